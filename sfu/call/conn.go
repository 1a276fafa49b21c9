package call

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// joinTimeout is how long a new connection has to send join or resume.
const joinTimeout = 10 * time.Second

// conn is one signalling WebSocket.
type conn struct {
	pump
	s    *Server
	name string // SFU room name
	kind string
	addr netip.Addr
	lim  *rate.Limiter

	// Set by the read loop (join/resume) and under the room's lock.
	r      *room
	member *member
	over   int // messages refused for rate since the connection opened
}

func newConn(s *Server, ws *websocket.Conn, name, kind string, addr netip.Addr) *conn {
	return &conn{
		pump: newPump(s, ws), s: s, name: name, kind: kind, addr: addr,
		lim: rate.NewLimiter(rate.Limit(s.lim.MsgRate), s.lim.MsgBurst),
	}
}

// send queues a message; a client that lets sendQueue messages pile up is
// cut off. Safe with the room's lock held.
func (c *conn) send(o Out) {
	o.V = Version
	c.queue(o, Out{V: Version, Type: TypeClosed, Code: CodeTimeout, Message: "too slow to read"})
}

// closeWith sends a closed message with code and reason, then closes.
func (c *conn) closeWith(code, reason string) {
	c.close(Out{V: Version, Type: TypeClosed, Code: code, Message: reason})
}

// run serves the connection until it ends.
func (c *conn) run(ctx context.Context) {
	c.pump.run(ctx, c.readLoop)
	if c.r != nil && c.member != nil {
		c.r.lost(c.member, c)
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
