package media

// ValidName reports whether s can name a stream or a rendition: 1–64 bytes
// of [A-Za-z0-9._-], and not "." or "..". Names appear unescaped in URL
// paths, playlists and signed manifests, so every package checks this one
// rule.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s == "." || s == ".." {
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
