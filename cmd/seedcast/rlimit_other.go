//go:build !unix

package main

// openFileLimit is not known here: the caps use the 1,024-fd sizes.
func openFileLimit() (uint64, bool) { return 0, false }
