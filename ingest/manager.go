package ingest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/origin"
	"github.com/seedcast/seedcast/sfu"
)

// ManagerParams configures a Manager.
type ManagerParams struct {
	Origin        *origin.Server
	ChunkDuration time.Duration
	GOP           time.Duration
	Logger        *slog.Logger
	Metrics       *Metrics
}

// Manager owns the ingest side of every broadcast stream of a server: for each
// stream its origin stream, signing key, pipeline and Broadcast tap, all of
// which outlive publisher sessions and SFU rooms. Attach it to each broadcast
// room the SFU opens.
type Manager struct {
	p    ManagerParams
	mu   sync.Mutex
	bc   map[string]*managed
	wg   sync.WaitGroup
	done chan struct{}
	once sync.Once
}

type managed struct {
	bc     *Broadcast
	stream *origin.Stream
	cancel context.CancelFunc
}

// NewManager returns a Manager with no streams.
func NewManager(p ManagerParams) *Manager {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return &Manager{p: p, bc: map[string]*managed{}, done: make(chan struct{})}
}

// AddStream prepares ingest for a broadcast stream: a fresh Ed25519 key signs
// its manifest for as long as the server runs.
func (m *Manager) AddStream(ctx context.Context, name string) (*origin.Stream, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	d := m.p.ChunkDuration
	if d == 0 {
		d = manifest.DefaultChunkDuration
	}
	st, err := m.p.Origin.AddStream(name, pub, d)
	if err != nil {
		return nil, err
	}
	pipe, err := NewPipeline(PipelineParams{
		Stream: name, Key: key, ChunkDuration: d, Publish: st.Publish, Logger: m.p.Logger, Metrics: m.p.Metrics,
	})
	if err != nil {
		m.p.Origin.RemoveStream(name)
		return nil, err
	}
	bc, err := NewBroadcast(BroadcastParams{Pipeline: pipe, GOP: m.p.GOP, Logger: m.p.Logger})
	if err != nil {
		m.p.Origin.RemoveStream(name)
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.bc[name]; dup {
		cancel()
		return nil, fmt.Errorf("ingest: stream %q added twice", name)
	}
	m.bc[name] = &managed{bc: bc, stream: st, cancel: cancel}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		bc.Run(runCtx)
	}()
	return st, nil
}

// Attach taps a broadcast room whose stream the Manager knows; rooms of other
// streams are left alone. The tap goes when the room closes.
func (m *Manager) Attach(room *sfu.Room) {
	m.mu.Lock()
	mg := m.bc[room.Name()]
	m.mu.Unlock()
	if mg == nil || room.Kind() != sfu.RoomKindBroadcast {
		return
	}
	mg.bc.SetKeyframeRequester(room.RequestKeyframe)
	remove := room.AddTap(mg.bc)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		select {
		case <-room.Done():
		case <-m.done:
		}
		remove()
	}()
	m.p.Logger.Info("ingest tapping broadcast room", "stream", room.Name())
}

// Close stops every stream's ingest and waits for it (the context given to
// AddStream ending does the same).
func (m *Manager) Close() {
	m.once.Do(func() { close(m.done) })
	m.mu.Lock()
	for _, mg := range m.bc {
		mg.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
}
