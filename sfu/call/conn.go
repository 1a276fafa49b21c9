package call

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// joinTimeout is how long a new connection has to send join or resume.
const joinTimeout = 10 * time.Second

// sendQueue is how many messages may wait for a slow client before its
// connection is closed.
const sendQueue = 256

// conn is one signalling WebSocket.
type conn struct {
	s    *Server
	ws   *websocket.Conn
	name string // SFU room name
	kind string
	addr netip.Addr
	lim  *rate.Limiter

	out     chan Out
	quit    chan struct{} // closed by closeWith: the writer ends after the queue
	once    sync.Once
	closing atomic.Bool

	// Set by the read loop (join/resume) and under the room's lock.
	r      *room
	member *member
	over   int // messages refused for rate since the connection opened
}

func newConn(s *Server, ws *websocket.Conn, name, kind string, addr netip.Addr) *conn {
	return &conn{
		s: s, ws: ws, name: name, kind: kind, addr: addr,
		lim: rate.NewLimiter(rate.Limit(s.lim.MsgRate), s.lim.MsgBurst),
		out: make(chan Out, sendQueue), quit: make(chan struct{}),
	}
}

// send queues a message; a client that lets sendQueue messages pile up is
// cut off. Safe with the room's lock held.
func (c *conn) send(o Out) {
	o.V = Version
	if c.closing.Load() {
		return
	}
	select {
	case c.out <- o:
	default:
		c.s.m.refused.WithLabelValues("slow-client").Inc()
		c.closeWith(CodeTimeout, "too slow to read")
	}
}

// closeWith sends a closed message with code and reason, then closes.
func (c *conn) closeWith(code, reason string) {
	c.once.Do(func() {
		c.closing.Store(true)
		select {
		case c.out <- Out{V: Version, Type: TypeClosed, Code: code, Message: reason}:
		default:
		}
		close(c.quit)
	})
}

// run serves the connection until it ends.
func (c *conn) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.writeLoop(ctx)
		cancel()
	}()
	go func() {
		defer wg.Done()
		c.pingLoop(ctx)
		cancel()
	}()
	c.readLoop(ctx)
	cancel()
	wg.Wait()
	_ = c.ws.CloseNow()
	if c.r != nil && c.member != nil {
		c.r.lost(c.member, c)
	}
}

func (c *conn) writeLoop(ctx context.Context) {
	write := func(o Out) error {
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return c.ws.Write(wctx, websocket.MessageText, b)
	}
	for {
		select {
		case o := <-c.out:
			if err := write(o); err != nil {
				return
			}
		case <-c.quit:
			for {
				select {
				case o := <-c.out:
					if write(o) != nil {
						return
					}
				default:
					_ = c.ws.Close(websocket.StatusNormalClosure, "")
					return
				}
			}
		case <-ctx.Done():
			return
		case <-c.s.done:
			return
		}
	}
}

// pingLoop pings the client; one that does not answer in time is gone.
func (c *conn) pingLoop(ctx context.Context) {
	t := time.NewTicker(c.s.lim.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.s.lim.PingTimeout)
		err := c.ws.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				c.s.m.refused.WithLabelValues("ping-timeout").Inc()
			}
			return
		}
	}
}

func (c *conn) readLoop(ctx context.Context) {
	joinBy := time.Now().Add(joinTimeout)
	for {
		rctx := ctx
		var cancel context.CancelFunc = func() {}
		if c.r == nil {
			rctx, cancel = context.WithDeadline(ctx, joinBy)
		}
		typ, b, err := c.ws.Read(rctx)
		cancel()
		if err != nil {
			c.s.log.Debug("signalling connection ended", "room", c.name, "err", err)
			if c.r == nil && errors.Is(err, context.DeadlineExceeded) {
				c.s.m.refused.WithLabelValues("join-timeout").Inc()
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.StatusMessageTooBig {
				c.s.m.badMessages.Inc()
			}
			return
		}
		if c.closing.Load() {
			continue // drain until the writer closes
		}
		if !c.lim.Allow() {
			c.over++
			c.s.m.refused.WithLabelValues(CodeRateLimited).Inc()
			if c.over > c.s.lim.MsgBurst {
				c.s.log.Debug("closing a connection over the message rate", "room", c.name, "refused", c.over)
				c.closeWith(CodeRateLimited, "too many messages")
				continue
			}
			c.send(Out{Type: TypeError, Code: CodeRateLimited, Message: "slow down"})
			continue
		}
		if typ != websocket.MessageText {
			c.s.m.badMessages.Inc()
			c.send(Out{Type: TypeError, Code: CodeBadMessage, Message: "messages are JSON text"})
			continue
		}
		msg, err := Decode(b)
		if err != nil {
			c.s.m.badMessages.Inc()
			c.send(Out{Type: TypeError, Code: CodeBadMessage, Message: err.Error()})
			continue
		}
		c.s.m.messages.WithLabelValues(msg.Type).Inc()
		if c.r == nil {
			c.first(msg)
			continue
		}
		c.r.handle(ctx, c.member, msg)
	}
}

// first handles the first message: join or resume.
func (c *conn) first(msg Msg) {
	switch msg.Type {
	case TypeJoin, TypeResume:
	case TypePing:
		c.send(Out{Type: TypePong, Ref: msg.Ref})
		return
	default:
		c.send(Out{Type: TypeError, Code: CodeNotJoined, Message: "send join or resume first", Ref: msg.Ref})
		return
	}
	for range 3 { // a room that died under us is replaced
		r, code := c.s.room(c.name, c.kind)
		if r == nil {
			c.s.m.refused.WithLabelValues(code).Inc()
			c.closeWith(code, "the server has as many rooms open as it may")
			return
		}
		c.r = r
		if msg.Type == TypeResume {
			r.resume(c, msg)
			return
		}
		if r.join(c, msg) {
			return
		}
	}
	c.closeWith(CodeServerFull, "could not open the room")
}
