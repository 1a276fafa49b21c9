package core

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/seedcast/seedcast/manifest"
)

// Store holds verified chunks, at most MaxBytes of them, least recently used
// out first, and with a Window, none stored longer ago than that. Only
// Verifier-checked bytes belong here. It is safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[manifest.ID, storeItem]
	fifo     []fifoItem // insertion order, for expiry by age (Window only)
	bytes    int64
	maxBytes int64
	window   time.Duration
	now      func() time.Time
}

type storeItem struct {
	data  []byte
	added time.Time
}

type fifoItem struct {
	id    manifest.ID
	added time.Time
}

// StoreParams configures a Store made by NewStoreWith.
type StoreParams struct {
	MaxBytes int64 // default 64 MiB
	// Window, if set, also drops the chunks put longer ago than this, oldest
	// first, at every Put: the origin's seed keeps what the origin's own
	// store keeps (origin.Store has the same bound) instead of MaxBytes of a
	// stream nobody can ask for any more. A node that plays keeps none.
	Window time.Duration
	Now    func() time.Time // the Window's clock (time.Now)
}

// NewStore returns an empty store of at most maxBytes (default 64 MiB) and
// no Window.
func NewStore(maxBytes int64) *Store { return NewStoreWith(StoreParams{MaxBytes: maxBytes}) }

// NewStoreWith returns an empty store with the bounds of p.
func NewStoreWith(p StoreParams) *Store {
	if p.MaxBytes <= 0 {
		p.MaxBytes = 64 << 20
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	s := &Store{maxBytes: p.MaxBytes, window: max(p.Window, 0), now: p.Now}
	// The LRU's count bound is never the binding one; bytes and age are.
	s.lru, _ = simplelru.NewLRU[manifest.ID, storeItem](1<<30, func(_ manifest.ID, it storeItem) { s.bytes -= int64(len(it.data)) })
	return s
}

// Put stores a verified chunk, dropping what falls out of the bounds.
func (s *Store) Put(id manifest.ID, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lru.Contains(id) {
		return
	}
	it := storeItem{data: data}
	if s.window > 0 {
		it.added = s.now()
		s.fifo = append(s.fifo, fifoItem{id: id, added: it.added})
		s.expire(it.added)
	}
	s.lru.Add(id, it)
	s.bytes += int64(len(data))
	for s.bytes > s.maxBytes && s.lru.Len() > 1 {
		s.lru.RemoveOldest()
	}
}

// expire drops the entries put more than the window before now. An id put
// again after it left has a later time in the LRU than its old fifo item,
// and stays.
func (s *Store) expire(now time.Time) {
	drop := 0
	for drop < len(s.fifo) && now.Sub(s.fifo[drop].added) > s.window {
		f := s.fifo[drop]
		if it, ok := s.lru.Peek(f.id); ok && it.added.Equal(f.added) {
			s.lru.Remove(f.id)
		}
		drop++
	}
	if drop > 0 {
		s.fifo = append(s.fifo[:0], s.fifo[drop:]...)
	}
}

// Get returns a stored chunk.
func (s *Store) Get(id manifest.ID) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.lru.Get(id)
	return it.data, ok
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

// Len is the number of chunks stored.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}
