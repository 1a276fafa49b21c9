package client

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir", "device.json")
	a, err := LoadIdentity(path, "Kiosk")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v, mode %v (want 0600)", err, fi.Mode())
	}
	again, err := LoadIdentity(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if again.Key() != a.Key() || !bytes.Equal(again.DH.Bytes(), a.DH.Bytes()) || again.Device != a.Device || again.Name != "Kiosk" {
		t.Fatal("the identity changed on reload")
	}
	renamed, err := LoadIdentity(path, "Hall")
	if err != nil || renamed.Name != "Hall" || renamed.Key() != a.Key() {
		t.Fatalf("rename: %v %+v", err, renamed)
	}

	link := a.ContactLink("https://example.org/")
	c, err := ParseContactLink(link)
	if err != nil {
		t.Fatal(err)
	}
	if KeyString(c.Key) != a.Key() || !bytes.Equal(c.DH, a.DH.PublicKey().Bytes()) || c.Name != "Kiosk" {
		t.Fatalf("link round trip: %+v", c)
	}
	for _, bad := range []string{"", "https://example.org/contacts", "#add=v1.AAAA.BBBB", "#add=v1." + a.Key() + ".%%%"} {
		if _, err := ParseContactLink(bad); !errors.Is(err, ErrContactLink) {
			t.Errorf("ParseContactLink(%q): %v", bad, err)
		}
	}

	// The 1:1 key is the same at both ends, and another salt or a third
	// party gives another.
	b, err := LoadIdentity(filepath.Join(t.TempDir(), "b.json"), "B")
	if err != nil {
		t.Fatal(err)
	}
	third, _ := LoadIdentity(filepath.Join(t.TempDir(), "c.json"), "C")
	ca, _ := ParseContactLink(a.ContactLink("http://x"))
	cb, _ := ParseContactLink(b.ContactLink("http://x"))
	salt := bytes.Repeat([]byte{1}, 16)
	kab, err1 := a.PairwiseKey(cb, salt)
	kba, err2 := b.PairwiseKey(ca, salt)
	if err1 != nil || err2 != nil || !bytes.Equal(kab, kba) || len(kab) != 32 {
		t.Fatalf("pairwise keys differ: %v %v", err1, err2)
	}
	other, _ := a.PairwiseKey(cb, bytes.Repeat([]byte{2}, 16))
	k3, _ := third.PairwiseKey(cb, salt)
	if bytes.Equal(other, kab) || bytes.Equal(k3, kab) {
		t.Fatal("the key does not depend on the salt and the parties")
	}
	if _, err := a.PairwiseKey(cb, []byte("short")); err == nil {
		t.Fatal("a short salt was accepted")
	}
}
