package manifest

// MaxNameLen is the longest stream or rendition name, in bytes.
const MaxNameLen = 64

// ValidName reports whether s can name a stream or rendition: 1–64 bytes
// of ASCII letters, digits, '.', '_' and '-', and not "." or "..". Names
// appear in URLs, playlists and signed entries, so nothing else is allowed.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
