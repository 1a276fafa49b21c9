//go:build unix

package main

import "syscall"

// openFileLimit returns the process's open-file (soft) limit. Go's runtime
// has already raised it to the hard limit where that is allowed.
func openFileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return uint64(r.Cur), true
}
