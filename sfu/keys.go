package sfu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrBadStreamKey is returned for a stream key specification that cannot be used.
var ErrBadStreamKey = errors.New("sfu: bad stream key")

// MinStreamKeyLen is the shortest stream key accepted: keys are bearer
// secrets, and a short one can be guessed.
const MinStreamKeyLen = 16

// ParseStreamKeys adds "NAME=KEY" specifications to keys; each spec may hold
// several, separated by commas (the SEEDCAST_STREAM_KEYS form).
func ParseStreamKeys(keys StreamKeys, specs ...string) error {
	for _, spec := range specs {
		for _, item := range strings.Split(spec, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, key, ok := strings.Cut(item, "=")
			if err := addKey(keys, name, key, ok); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReadStreamKeys adds the keys of a keys file to keys: one "NAME=KEY" (or
// "NAME KEY") a line; blank lines and lines starting with # are skipped.
func ReadStreamKeys(keys StreamKeys, r io.Reader) error {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, key, ok := strings.Cut(line, "=")
		if !ok {
			name, key, ok = strings.Cut(line, " ")
		}
		if err := addKey(keys, strings.TrimSpace(name), strings.TrimSpace(key), ok); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

func addKey(keys StreamKeys, name, key string, ok bool) error {
	if !ok {
		return fmt.Errorf("%w: want NAME=KEY", ErrBadStreamKey)
	}
	if err := checkStreamName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrBadStreamKey, err)
	}
	if len(key) < MinStreamKeyLen {
		return fmt.Errorf("%w: the key of %q is shorter than %d characters", ErrBadStreamKey, name, MinStreamKeyLen)
	}
	if old, dup := keys[name]; dup && old != key {
		return fmt.Errorf("%w: %q has two different keys", ErrBadStreamKey, name)
	}
	keys[name] = key
	return nil
}
