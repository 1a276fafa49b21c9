package media

import "github.com/seedcast/seedcast/manifest"

// ValidName reports whether s can name a stream or a rendition
// (manifest.ValidName: the one rule every package checks).
func ValidName(s string) bool { return manifest.ValidName(s) }
