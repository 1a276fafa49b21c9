package call

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// sendQueue is how many messages may wait for a slow client before its
// connection is closed.
const sendQueue = 256

// pump writes one WebSocket's outgoing messages from a bounded queue and
// pings the peer; the signalling and presence connections share it.
type pump struct {
	s       *Server
	ws      *websocket.Conn
	out     chan any
	quit    chan struct{} // closed by closeWith: the writer ends after the queue
	once    sync.Once
	closing atomic.Bool
}

func newPump(s *Server, ws *websocket.Conn) pump {
	return pump{s: s, ws: ws, out: make(chan any, sendQueue), quit: make(chan struct{})}
}

// queue queues a message; a client that lets sendQueue messages pile up
// is cut off with closed. Safe under any lock.
func (p *pump) queue(o, closed any) {
	if p.closing.Load() {
		return
	}
	select {
	case p.out <- o:
	default:
		p.s.m.refused.WithLabelValues("slow-client").Inc()
		p.close(closed)
	}
}

// close queues a last message (if there is room) and closes.
func (p *pump) close(last any) {
	p.once.Do(func() {
		p.closing.Store(true)
		select {
		case p.out <- last:
		default:
		}
		close(p.quit)
	})
}

// run writes and pings until ctx ends or the connection fails, then
// cancels; read is the caller's read loop, run on this goroutine.
func (p *pump) run(ctx context.Context, read func(context.Context)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.writeLoop(ctx)
		cancel()
	}()
	go func() {
		defer wg.Done()
		p.pingLoop(ctx)
		cancel()
	}()
	read(ctx)
	cancel()
	wg.Wait()
	_ = p.ws.CloseNow()
}

func (p *pump) writeLoop(ctx context.Context) {
	write := func(o any) error {
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return p.ws.Write(wctx, websocket.MessageText, b)
	}
	for {
		select {
		case o := <-p.out:
			if err := write(o); err != nil {
				return
			}
		case <-p.quit:
			for {
				select {
				case o := <-p.out:
					if write(o) != nil {
						return
					}
				default:
					_ = p.ws.Close(websocket.StatusNormalClosure, "")
					return
				}
			}
		case <-ctx.Done():
			return
		case <-p.s.done:
			return
		}
	}
}

// pingLoop pings the client; one that does not answer in time is gone.
func (p *pump) pingLoop(ctx context.Context) {
	t := time.NewTicker(p.s.lim.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, p.s.lim.PingTimeout)
		err := p.ws.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				p.s.m.refused.WithLabelValues("ping-timeout").Inc()
			}
			return
		}
	}
}
