// Package docvectors reads the test vectors of a Markdown specification: the
// fenced block after each "<!-- vector: NAME -->" line. The protocol tests of
// chunker and swarm/wire check docs/protocol.md with it.
package docvectors

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// Read returns the fenced blocks of the file at path that follow a
// "<!-- vector: NAME -->" line, by NAME.
func Read(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	var name string  // vector whose block is expected or being read
	inBlock := false // reading the fenced block of name
	var body strings.Builder
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		switch {
		case inBlock && strings.TrimSpace(s) == "```":
			if _, dup := out[name]; dup {
				t.Fatalf("%s: vector %q defined twice", path, name)
			}
			out[name] = body.String()
			name, inBlock = "", false
			body.Reset()
		case inBlock:
			body.WriteString(s)
			body.WriteByte('\n')
		case name != "" && strings.HasPrefix(s, "```"):
			inBlock = true
		case name != "" && strings.TrimSpace(s) != "":
			t.Fatalf("%s:%d: vector %q is not followed by a fenced block", path, line, name)
		default:
			if rest, ok := strings.CutPrefix(strings.TrimSpace(s), "<!-- vector:"); ok {
				name = strings.TrimSpace(strings.TrimSuffix(rest, "-->"))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if inBlock || name != "" {
		t.Fatalf("%s: vector %q not terminated", path, name)
	}
	return out
}

// Hex decodes a hexadecimal vector, ignoring white space.
func Hex(t testing.TB, vectors map[string]string, name string) []byte {
	t.Helper()
	s, ok := vectors[name]
	if !ok {
		t.Fatalf("%s has no vector %q", "the document", name)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("vector %q: %v", name, err)
	}
	return b
}
