package client

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrContactLink means a contact link that cannot be read.
var ErrContactLink = errors.New("client: not a contact link")

// Identity is a native device's identity, as a browser's (player's
// js/identity.js): an Ed25519 key that proves who it is to the presence
// server, and an X25519 key for end-to-end keys with each contact.
type Identity struct {
	Sign   ed25519.PrivateKey
	DH     *ecdh.PrivateKey
	Device string // this device's id
	Name   string
}

type identityFile struct {
	Ed25519 string `json:"ed25519"` // the 32-byte seed, base64url
	X25519  string `json:"x25519"`
	Device  string `json:"device"`
	Name    string `json:"name"`
}

// LoadIdentity reads the identity kept in path, making it (mode 0600, its
// directory 0700) on first use. A non-empty name replaces the stored one.
func LoadIdentity(path, name string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newIdentity(path, name)
	}
	if err != nil {
		return nil, fmt.Errorf("client: identity: %w", err)
	}
	var f identityFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("client: identity %s: %w", path, err)
	}
	seed, err1 := base64.RawURLEncoding.DecodeString(f.Ed25519)
	dh, err2 := base64.RawURLEncoding.DecodeString(f.X25519)
	if err1 != nil || err2 != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("client: identity %s: damaged keys", path)
	}
	priv, err := ecdh.X25519().NewPrivateKey(dh)
	if err != nil {
		return nil, fmt.Errorf("client: identity %s: %w", path, err)
	}
	id := &Identity{Sign: ed25519.NewKeyFromSeed(seed), DH: priv, Device: f.Device, Name: f.Name}
	if name != "" && name != f.Name {
		id.Name = name
		if err := id.save(path); err != nil {
			return nil, err
		}
	}
	return id, nil
}

func newIdentity(path, name string) (*Identity, error) {
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	dh, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	id := &Identity{Sign: sign, DH: dh, Device: "native-" + strings.ToLower(rand.Text()[:12]), Name: name}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("client: identity: %w", err)
	}
	return id, id.save(path)
}

func (id *Identity) save(path string) error {
	b, _ := json.MarshalIndent(identityFile{
		Ed25519: base64.RawURLEncoding.EncodeToString(id.Sign.Seed()),
		X25519:  base64.RawURLEncoding.EncodeToString(id.DH.Bytes()),
		Device:  id.Device, Name: id.Name,
	}, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("client: identity: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("client: identity: %w", err)
	}
	return nil
}

// Key is the identity's public key as the protocol writes it.
func (id *Identity) Key() string { return KeyString(id.Sign.Public().(ed25519.PublicKey)) }

// Contact is someone's contact link, read.
type Contact struct {
	Key  ed25519.PublicKey
	DH   []byte // X25519 public key
	Name string
}

// ContactLink is the identity's contact link on the server at base
// (http(s)://host[:port]): its keys and name are in the fragment, which
// browsers never send to the server.
func (id *Identity) ContactLink(base string) string {
	return fmt.Sprintf("%s/contacts#add=v1.%s.%s.%s", strings.TrimSuffix(base, "/"), id.Key(),
		base64.RawURLEncoding.EncodeToString(id.DH.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString([]byte(id.Name)))
}

var linkRE = regexp.MustCompile(`(?:^|[#&])add=(v1\.[A-Za-z0-9_.-]+)`)

// ParseContactLink reads a contact link (or its add=… part).
func ParseContactLink(s string) (Contact, error) {
	m := linkRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Contact{}, fmt.Errorf("%w: no add=v1.… part", ErrContactLink)
	}
	parts := strings.Split(m[1], ".")
	if len(parts) < 3 || len(parts) > 4 {
		return Contact{}, fmt.Errorf("%w: want v1.<key>.<dh>.<name>", ErrContactLink)
	}
	key, err1 := base64.RawURLEncoding.DecodeString(parts[1])
	dh, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || len(key) != ed25519.PublicKeySize || len(dh) != 32 {
		return Contact{}, fmt.Errorf("%w: its keys are not 32 bytes of base64url", ErrContactLink)
	}
	c := Contact{Key: key, DH: dh}
	if len(parts) == 4 {
		name, err := base64.RawURLEncoding.DecodeString(parts[3])
		if err != nil || !utf8.Valid(name) {
			return Contact{}, fmt.Errorf("%w: its name is garbled", ErrContactLink)
		}
		c.Name = strings.Map(func(r rune) rune {
			if r < 0x20 {
				return -1
			}
			return r
		}, string(name))
	}
	return c, nil
}

// PairwiseKey is a 1:1 call's base key with contact c (docs/e2ee.md §2.1),
// the same the browser derives: X25519, then HKDF-SHA256 with the call's
// salt and info "seedcast e2ee 1:1 v1" || both identity keys, sorted, each
// with a 2-byte length.
func (id *Identity) PairwiseKey(c Contact, salt []byte) ([]byte, error) {
	if len(salt) < 16 {
		return nil, errors.New("client: the call salt is at least 16 bytes")
	}
	pub, err := ecdh.X25519().NewPublicKey(c.DH)
	if err != nil {
		return nil, fmt.Errorf("client: contact's X25519 key: %w", err)
	}
	shared, err := id.DH.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("client: X25519: %w", err)
	}
	ids := []string{id.Key(), KeyString(c.Key)}
	slices.Sort(ids) // base64url is ASCII: byte order is JavaScript's sort order
	var info bytes.Buffer
	info.WriteString("seedcast e2ee 1:1 v1")
	for _, s := range ids {
		info.Write([]byte{byte(len(s) >> 8), byte(len(s))})
		info.WriteString(s)
	}
	return hkdf.Key(sha256.New, shared, salt, info.String(), 32)
}
