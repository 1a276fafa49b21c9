package swarm

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// ViewerParams configures a Viewer: the node's params, and how soon a lost
// node is replaced.
type ViewerParams struct {
	Node NodeParams
	// RetryMin and RetryMax bound the wait between tries to start a new
	// node while the origin cannot be reached (250 ms, doubling to 1 s: a
	// viewer resumes within about a second of its stream being live again).
	RetryMin, RetryMax time.Duration
}

// Viewer runs a viewer node that outlives its origin. When the node loses
// the tracker (the origin restarted, or the path to it broke) it is closed,
// with every link it held, and a new one is started as soon as the stream
// is live again: with the stream's key as the server gives it then, so no
// chunk signed by an earlier key is taken, and with fresh upstreams, so it
// waits on no dead peer. Its stats run on across nodes.
type Viewer struct {
	p      ViewerParams
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	cur  *Node
	base Stats // the counters of the nodes before cur
}

// StartViewer starts the first node (failing as StartNode fails) and
// keeps one running until Close.
func StartViewer(ctx context.Context, p ViewerParams) (*Viewer, error) {
	if p.RetryMin <= 0 {
		p.RetryMin = 250 * time.Millisecond
	}
	if p.RetryMax < p.RetryMin {
		p.RetryMax = max(time.Second, p.RetryMin)
	}
	if p.Node.Logger == nil {
		p.Node.Logger = slog.Default()
	}
	n, err := StartNode(ctx, p.Node)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	v := &Viewer{p: p, cancel: cancel, done: make(chan struct{}), cur: n}
	go v.run(ctx)
	return v, nil
}

func (v *Viewer) run(ctx context.Context) {
	defer close(v.done)
	log := v.p.Node.Logger
	n := v.cur // set before run started; only run replaces it
	restarts := 0
	for {
		select {
		case <-ctx.Done():
			n.Close()
			return
		case <-n.Lost():
		}
		n.Close()
		v.mu.Lock()
		v.base, v.cur = addStats(v.base, n.Stats()), nil // no node until the next one runs
		v.mu.Unlock()
		log.Info("viewer: the tracker is gone; starting a new node when the stream is live")
		wait := v.p.RetryMin
		for {
			v.mu.Lock()
			np := v.p.Node // SetBudget may have moved the budget meanwhile
			v.mu.Unlock()
			next, err := StartNode(ctx, np)
			if err == nil {
				n = next
				v.mu.Lock()
				v.cur = next
				v.mu.Unlock()
				restarts++
				log.Info("viewer: new node running", "restart", restarts)
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.Debug("viewer: the stream is not reachable yet", "err", err, "retry in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, v.p.RetryMax)
		}
	}
}

// Close stops the viewer and its node, and waits for them.
func (v *Viewer) Close() {
	v.cancel()
	<-v.done
}

// Stats returns the counters of every node the viewer ran, summed, with the
// gauges (peers, depth, relay, RTT, latencies) of the one running (zero
// between two nodes).
func (v *Viewer) Stats() Stats {
	v.mu.Lock()
	n, base := v.cur, v.base
	v.mu.Unlock()
	if n == nil {
		return base
	}
	return addStats(base, n.Stats())
}

// LatencySamples are the running node's (Node.LatencySamples; none
// between two nodes).
func (v *Viewer) LatencySamples() []time.Duration {
	v.mu.Lock()
	n := v.cur
	v.mu.Unlock()
	if n == nil {
		return nil
	}
	return n.LatencySamples()
}

// SetBudget changes the relay budget of the running node and of those to
// come.
func (v *Viewer) SetBudget(kbps int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.p.Node.BudgetKbps = kbps
	if v.cur != nil {
		v.cur.SetBudget(kbps)
	}
}

// addStats adds b's counters to a's, and takes b's gauges.
func addStats(a, b Stats) Stats {
	s := b
	s.BytesFromPeers += a.BytesFromPeers
	s.BytesFromOrigin += a.BytesFromOrigin
	s.BytesFromSeed += a.BytesFromSeed
	s.BytesUploaded += a.BytesUploaded
	s.BytesControl += a.BytesControl
	s.Chunks += a.Chunks
	s.Rejected += a.Rejected
	s.Unknown += a.Unknown
	s.Pulled += a.Pulled
	s.Pushed += a.Pushed
	s.CutThrough += a.CutThrough
	s.PullsNoPusher += a.PullsNoPusher
	s.PullsLatePush += a.PullsLatePush
	s.OriginPulls += a.OriginPulls
	s.HTTPFed += a.HTTPFed
	s.Reassigned += a.Reassigned
	s.StallReports += a.StallReports
	s.Complaints += a.Complaints
	s.ChunksOnTime += a.ChunksOnTime
	s.ChunksLate += a.ChunksLate
	return s
}
