package core

import (
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/seedcast/seedcast/manifest"
)

// Store holds verified chunks, at most MaxBytes of them, least recently used
// out first. Only Verifier-checked bytes belong here. It is safe for
// concurrent use.
type Store struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[manifest.ID, []byte]
	bytes    int64
	maxBytes int64
}

// NewStore returns an empty store of at most maxBytes (default 64 MiB).
func NewStore(maxBytes int64) *Store {
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	s := &Store{maxBytes: maxBytes}
	s.lru, _ = simplelru.NewLRU[manifest.ID, []byte](1<<30, func(_ manifest.ID, b []byte) { s.bytes -= int64(len(b)) })
	return s
}

// Put stores a verified chunk.
func (s *Store) Put(id manifest.ID, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lru.Contains(id) {
		return
	}
	s.lru.Add(id, data)
	s.bytes += int64(len(data))
	for s.bytes > s.maxBytes && s.lru.Len() > 1 {
		s.lru.RemoveOldest()
	}
}

// Get returns a stored chunk.
func (s *Store) Get(id manifest.ID) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Get(id)
}

// Has reports whether id is stored, without touching its recency.
func (s *Store) Has(id manifest.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Contains(id)
}

// Bytes is the size of what is stored.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}
