package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seedcast/seedcast/bench"
)

// TestOriginRestart: the origin process is stopped mid-stream and a new
// one started on the same address (a new process: a new signing key, a new
// tracker, the demo publisher reconnecting). Every `seedcast viewer` takes
// up the stream again within 3 s of it being live again, with the key the
// new server gives (the chunks it then holds verify against it, so its
// continuity holds), and none is left waiting on a peer of the old swarm.
func TestOriginRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("three viewer processes across a server restart")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServerProc(t, nil, "--demo", "--webrtc-loopback-only")
	addr := strings.TrimPrefix(srv.base, "http://")
	dir := t.TempDir()
	var viewers []*nativeViewer
	for i := range 3 {
		viewers = append(viewers, startNative(t, ctx, srv.base, dir, i, 2*time.Minute, "--stats-interval", "250ms"))
	}
	defer func() {
		cancel()
		for i, v := range viewers {
			if err := <-v.done; err != nil {
				t.Errorf("viewer %d: %v\n%s", i, err, v.out)
			}
		}
	}()
	got := func(l bench.NodeLine) int64 { return l.BytesFromPeers + l.BytesFromOrigin }
	// Playing: every viewer has held media for a while.
	waitUntil(t, ctx, 30*time.Second, "every viewer playing", func() bool {
		for _, v := range viewers {
			ls := v.lines(t)
			if len(ls) < 8 || got(ls[len(ls)-1]) == 0 {
				return false
			}
		}
		return true
	})

	srv.stop()
	stoppedAt := time.Now()
	srv2 := startServerProc(t, nil, "--demo", "--webrtc-loopback-only", "--addr", addr)
	if srv2.base != srv.base {
		t.Fatalf("restarted at %s, want %s", srv2.base, srv.base)
	}
	var liveAt time.Time
	waitUntil(t, ctx, 30*time.Second, "the stream live again", func() bool {
		if isLive(ctx, srv.base) {
			liveAt = time.Now()
			return true
		}
		return false
	})
	t.Logf("live again %v after the stop (at %s)", liveAt.Sub(stoppedAt).Round(time.Millisecond), liveAt.Format("15:04:05.000"))

	// Each viewer's first line after liveAt with more media than it held
	// then; and 5 s later, its continuity since.
	resumed := make([]time.Time, len(viewers))
	waitUntil(t, ctx, 20*time.Second, "every viewer resumed", func() bool {
		for i, v := range viewers {
			if !resumed[i].IsZero() {
				continue
			}
			var before int64 = -1
			for _, l := range v.lines(t) {
				at, err := l.Time()
				if err != nil {
					continue
				}
				if !at.After(liveAt) {
					before = got(l)
				} else if before >= 0 && got(l) > before {
					resumed[i] = at
					break
				}
			}
		}
		for _, r := range resumed {
			if r.IsZero() {
				return false
			}
		}
		return true
	})
	for i, r := range resumed {
		d := r.Sub(liveAt)
		t.Logf("viewer %d: resumed %v after the stream was live again (at %s)", i, d.Round(time.Millisecond), r.Format("15:04:05.000"))
		if d > 3*time.Second && !raceEnabled { // ./scripts/test runs this again without -race for the figure
			t.Errorf("viewer %d resumed %v after the stream was live again, want ≤ 3 s (stopped at %s, live at %s)\n%s", i, d, stoppedAt.Format("15:04:05.000"), liveAt.Format("15:04:05.000"), viewers[i].out)
		}
	}
	last := resumed[0]
	for _, r := range resumed {
		if r.After(last) {
			last = r
		}
	}
	// Five seconds of play on the new stream: on time, nothing rejected.
	waitUntil(t, ctx, 20*time.Second, "5 s of play after resuming", func() bool {
		for _, v := range viewers {
			ls := v.lines(t)
			if at, err := ls[len(ls)-1].Time(); err != nil || at.Before(last.Add(5*time.Second)) {
				return false
			}
		}
		return true
	})
	for i, v := range viewers {
		ls := v.lines(t)
		var a bench.NodeLine
		for _, l := range ls {
			if at, err := l.Time(); err == nil && !at.After(last) {
				a = l
			}
		}
		b := ls[len(ls)-1]
		onTime, late := b.ChunksOnTime-a.ChunksOnTime, b.ChunksLate-a.ChunksLate
		t.Logf("viewer %d after resuming: %d chunks on time, %d late, %d rejected, %d peers", i, onTime, late, b.Rejected-a.Rejected, b.Peers)
		if onTime == 0 || float64(onTime) < 0.99*float64(onTime+late) {
			t.Errorf("viewer %d: %d on time, %d late after resuming", i, onTime, late)
		}
		if b.Rejected != a.Rejected {
			t.Errorf("viewer %d rejected %d chunks or batches after resuming", i, b.Rejected-a.Rejected)
		}
	}
}

// isLive reports whether the demo stream's manifest names a rendition.
func isLive(ctx context.Context, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/live/demo/manifest?last=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var m struct {
		Renditions []json.RawMessage `json:"renditions"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&m) == nil && len(m.Renditions) > 0
}

// waitUntil polls cond every 50 ms until it holds, or fails the test after
// limit (or when ctx ends).
func waitUntil(t *testing.T, ctx context.Context, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("not within %v: %s", limit, what)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
