package scheduler

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// UploadKind says why a chunk would be sent to a peer.
type UploadKind int

const (
	UploadRequest UploadKind = iota // the peer pulled it (repair)
	UploadPush                      // the peer subscribes to its substream
)

// Upload is one chunk waiting to be sent to one peer.
type Upload struct {
	Peer   string
	Seq    uint64
	Size   int
	Kind   UploadKind
	Buffer time.Duration // for requests: the requester's buffered media ahead of playback
	// Relay marks a peer that relays to others: pushes to it go before
	// pushes to peers that relay nothing, so a chunk reaches the rest of
	// the tree sooner.
	Relay bool
}

// UploadParams configures OrderUploads.
type UploadParams struct {
	// Requests from peers whose buffers fall in the same BufferTier are
	// equals; 0 means 500 ms.
	BufferTier time.Duration
	// After is the peer served last in the previous tick; round-robin among
	// equals resumes with the next peer ID after it, so no peer always goes first.
	After string
	// UrgentBuffer, if positive, splits requests: those from peers buffered
	// below it go before pushes, the others after them (a relay short of
	// budget keeps its subscribers' pushes on time rather than answer
	// repairs nobody is waiting for). 0 puts every request first.
	UrgentBuffer time.Duration
}

// OrderUploads returns pending in sending order: requests first, lowest
// buffer tier first; then pushes to subscribers, those that relay before
// those that do not (with UrgentBuffer set, requests from peers buffered at
// least that much go last). Within a group of equals,
// peers take turns (round-robin, one chunk each per round, in ID order
// starting after p.After), and each peer's own chunks go in seq order. pending
// is not modified.
func OrderUploads(pending []Upload, p UploadParams) []Upload {
	if p.BufferTier <= 0 {
		p.BufferTier = 500 * time.Millisecond
	}
	type item struct {
		Upload
		class, tier, rank int
		wrap              bool // ID <= After: goes after the others in a round
	}
	items := make([]item, len(pending))
	for i, u := range pending {
		it := item{Upload: u, class: 1, wrap: p.After != "" && u.Peer <= p.After}
		if !u.Relay {
			it.class = 2
		}
		if u.Kind == UploadRequest {
			it.class = 0
			it.tier = int(max(u.Buffer, 0) / p.BufferTier)
			if p.UrgentBuffer > 0 && u.Buffer >= p.UrgentBuffer {
				it.class = 3
			}
		}
		items[i] = it
	}
	group := func(a, b *item) int {
		return cmp.Or(cmp.Compare(a.class, b.class), cmp.Compare(a.tier, b.tier))
	}
	// Rank each peer's chunks within its group: 0, 1, 2, ... in seq order.
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(group(&a, &b), strings.Compare(a.Peer, b.Peer), cmp.Compare(a.Seq, b.Seq))
	})
	for i := range items {
		if i > 0 && group(&items[i-1], &items[i]) == 0 && items[i-1].Peer == items[i].Peer {
			items[i].rank = items[i-1].rank + 1
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(group(&a, &b), cmp.Compare(a.rank, b.rank), cmpBool(a.wrap, b.wrap), strings.Compare(a.Peer, b.Peer))
	})
	out := make([]Upload, len(items))
	for i := range items {
		out[i] = items[i].Upload
	}
	return out
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// TakeUploads returns how many leading uploads of ordered the bucket lets
// through at now, taking their bytes from it. It stops at the first that does
// not fit, so a large urgent chunk is not overtaken by small later ones. A
// bucket with rate 0 (relay off) lets nothing through. Keep the bucket's burst
// at least the largest chunk size, or that chunk never goes.
func TakeUploads(now time.Time, ordered []Upload, b *TokenBucket) int {
	for i, u := range ordered {
		if !b.Allow(now, u.Size) {
			return i
		}
	}
	return len(ordered)
}
