package origin

import (
	"bytes"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
)

func blob(i, size int) (manifest.ID, []byte) {
	b := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
	return manifest.Sum(b), b
}

func TestStoreByteBound(t *testing.T) {
	s := NewStore(StoreParams{MaxBytes: 10_000, Window: time.Hour})
	t0 := time.Unix(1000, 0)
	var ids []manifest.ID
	for i := 0; i < 30; i++ {
		id, b := blob(i, 1000)
		ids = append(ids, id)
		s.Put(id, b, t0)
		if _, n := s.Stats(); n > 10_000 {
			t.Fatalf("after %d puts the store holds %d bytes", i+1, n)
		}
	}
	// The newest ten fit; the oldest went first.
	for i, id := range ids {
		_, ok := s.Get(id)
		if ok != (i >= 20) {
			t.Errorf("chunk %d held=%v", i, ok)
		}
	}
}

func TestStoreWindow(t *testing.T) {
	s := NewStore(StoreParams{MaxBytes: 1 << 30, Window: 10 * time.Second})
	t0 := time.Unix(1000, 0)
	old, ob := blob(1, 100)
	s.Put(old, ob, t0)
	s.Get(old) // recently used, but age decides
	pin, pb := blob(2, 100)
	s.Pin(pin, pb, t0)
	young, yb := blob(3, 100)
	s.Put(young, yb, t0.Add(5*time.Second))
	late, lb := blob(4, 100)
	s.Put(late, lb, t0.Add(11*time.Second))
	if _, ok := s.Get(old); ok {
		t.Error("chunk older than the window still held")
	}
	for _, id := range []manifest.ID{pin, young, late} {
		if _, ok := s.Get(id); !ok {
			t.Errorf("%s lost", id)
		}
	}
	s.Unpin(pin)
	if _, ok := s.Get(pin); ok {
		t.Error("unpinned init still held")
	}
	if n, b := s.Stats(); n != 2 || b != 200 {
		t.Errorf("stats %d items %d bytes", n, b)
	}
}
