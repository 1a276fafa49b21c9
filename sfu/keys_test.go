package sfu

import (
	"errors"
	"strings"
	"testing"
)

func TestParseStreamKeys(t *testing.T) {
	keys := StreamKeys{}
	if err := ParseStreamKeys(keys, "demo=0123456789abcdef", "a=aaaaaaaaaaaaaaaa, b=bbbbbbbbbbbbbbbb,"); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys["b"] != "bbbbbbbbbbbbbbbb" {
		t.Errorf("keys %v", keys)
	}
	if err := keys.CheckPublish("demo", "0123456789abcdef"); err != nil {
		t.Errorf("right key refused: %v", err)
	}
	if err := keys.CheckPublish("demo", "0123456789abcdeF"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong key: %v", err)
	}
	for _, bad := range []string{"nokey", "demo=short", "bad name=0123456789abcdef", "=0123456789abcdef", "demo=ffffffffffffffff"} {
		if err := ParseStreamKeys(keys, bad); !errors.Is(err, ErrBadStreamKey) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestReadStreamKeys(t *testing.T) {
	keys := StreamKeys{}
	file := "# stream keys\n\nlive=0123456789abcdef\nother 1111111111111111\n"
	if err := ReadStreamKeys(keys, strings.NewReader(file)); err != nil || len(keys) != 2 {
		t.Fatalf("%v %v", err, keys)
	}
	if err := ReadStreamKeys(keys, strings.NewReader("ok=0123456789abcdef\nbroken\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("broken file: %v", err)
	}
}
