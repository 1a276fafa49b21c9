package origin

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/seedcast/seedcast/manifest"
)

// Store keeps chunk and init bytes by ID. It holds what arrived within the
// last Window, and never more than MaxBytes: past either bound the oldest
// entries go first. Pinned entries (init segments in use) stay until unpinned.
// It is safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[manifest.ID, storeItem]
	fifo     []fifoItem // insertion order, for expiry by age
	bytes    int64
	maxBytes int64
	window   time.Duration
	pinned   map[manifest.ID]storeItem
}

type storeItem struct {
	data  []byte
	added time.Time
}

type fifoItem struct {
	id    manifest.ID
	added time.Time
}

// StoreParams configures a Store.
type StoreParams struct {
	MaxBytes int64         // default 256 MiB
	Window   time.Duration // default 60 s
}

// NewStore returns an empty store.
func NewStore(p StoreParams) *Store {
	if p.MaxBytes <= 0 {
		p.MaxBytes = 256 << 20
	}
	if p.Window <= 0 {
		p.Window = time.Minute
	}
	s := &Store{maxBytes: p.MaxBytes, window: p.Window, pinned: map[manifest.ID]storeItem{}}
	// The LRU's count bound is never the binding one; bytes and age are.
	s.lru, _ = simplelru.NewLRU[manifest.ID, storeItem](1<<30, func(_ manifest.ID, it storeItem) {
		s.bytes -= int64(len(it.data))
	})
	return s
}

// Put stores data under id, dropping the oldest entries past the bounds.
// now is the insertion time (the clock is the caller's).
func (s *Store) Put(id manifest.ID, data []byte, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lru.Contains(id) {
		return
	}
	s.lru.Add(id, storeItem{data: data, added: now})
	s.bytes += int64(len(data))
	s.fifo = append(s.fifo, fifoItem{id: id, added: now})
	s.expire(now)
	for s.bytes > s.maxBytes && s.lru.Len() > 1 {
		s.lru.RemoveOldest()
	}
}

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

// Pin keeps data under id regardless of the bounds until Unpin.
func (s *Store) Pin(id manifest.ID, data []byte, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinned[id] = storeItem{data: data, added: now}
}

// Unpin lets id's entry go (it stays as an ordinary entry if it was also Put).
func (s *Store) Unpin(id manifest.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pinned, id)
}

// Get returns the bytes stored under id.
func (s *Store) Get(id manifest.ID) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.pinned[id]; ok {
		return it.data, true
	}
	it, ok := s.lru.Get(id)
	return it.data, ok
}

// Stats returns the number of entries and their total bytes (pins excluded).
func (s *Store) Stats() (items int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len(), s.bytes
}
