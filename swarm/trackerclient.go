package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// ErrTrackerClosed is returned once the tracker connection has ended; Err
// says why.
var ErrTrackerClosed = errors.New("swarm: tracker connection closed")

// TrackerParams configures a tracker connection.
type TrackerParams struct {
	URL  string        // ws(s)://host/tracker
	Join protocol.Join // Type and V are filled in
	// JoinTimeout bounds the dial and the wait for the welcome (default 10 s).
	JoinTimeout time.Duration
}

// TrackerClient is a node's connection to the tracker: it joins, then
// delivers the tracker's signals and reassignments as events, and sends the
// node's signals and reports. Its methods are safe for concurrent use.
type TrackerClient struct {
	ws      *websocket.Conn
	welcome protocol.Welcome
	events  chan any
	done    chan struct{}
	closing chan struct{}
	once    sync.Once

	mu  sync.Mutex
	err error
}

// DialTracker connects, joins and waits for the welcome.
func DialTracker(ctx context.Context, p TrackerParams) (*TrackerClient, error) {
	if p.JoinTimeout <= 0 {
		p.JoinTimeout = 10 * time.Second
	}
	jctx, cancel := context.WithTimeout(ctx, p.JoinTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(jctx, p.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("swarm: tracker: %w", err)
	}
	ws.SetReadLimit(protocol.MaxMessageBytes)
	join := p.Join
	join.Type, join.V = protocol.TypeJoin, protocol.ProtocolVersion
	if err := writeJSON(jctx, ws, join); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("swarm: tracker join: %w", err)
	}
	msg, err := readServer(jctx, ws)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("swarm: tracker join: %w", err)
	}
	w, ok := msg.(*protocol.Welcome)
	if !ok {
		ws.Close(websocket.StatusPolicyViolation, "welcome expected")
		return nil, fmt.Errorf("swarm: tracker answered the join with %T", msg)
	}
	c := &TrackerClient{ws: ws, welcome: *w, events: make(chan any, 64), done: make(chan struct{}), closing: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// Welcome is what the tracker said to the join: the peer id, the stream key
// and the initial upstreams.
func (c *TrackerClient) Welcome() protocol.Welcome { return c.welcome }

// Events delivers *protocol.Signal and *protocol.Reassign messages in order;
// it is closed when the connection ends.
func (c *TrackerClient) Events() <-chan any { return c.events }

// Err is why the connection ended (nil while it is up).
func (c *TrackerClient) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *TrackerClient) readLoop() {
	defer close(c.events)
	defer close(c.done)
	for {
		msg, err := readServer(context.Background(), c.ws)
		if err != nil {
			c.mu.Lock()
			c.err = fmt.Errorf("%w: %v", ErrTrackerClosed, err)
			c.mu.Unlock()
			return
		}
		switch msg.(type) {
		case *protocol.Signal, *protocol.Reassign:
			select {
			case c.events <- msg:
			case <-c.closing: // nobody reads any more
			}
		}
	}
}

// Signal sends signaling to a linked peer.
func (c *TrackerClient) Signal(ctx context.Context, to protocol.PeerID, sdp *protocol.SDP, cand *protocol.Candidate) error {
	return c.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: to, SDP: sdp, Candidate: cand})
}

// Report sends a health report.
func (c *TrackerClient) Report(ctx context.Context, r protocol.Report) error {
	r.Type = protocol.TypeReport
	return c.send(ctx, r)
}

func (c *TrackerClient) send(ctx context.Context, v any) error {
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	return writeJSON(ctx, c.ws, v)
}

// Close leaves the swarm and ends the connection.
func (c *TrackerClient) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.once.Do(func() { close(c.closing) })
	_ = writeJSON(ctx, c.ws, protocol.Leave{Type: protocol.TypeLeave})
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
	if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
		err = nil
	}
	return err
}

func writeJSON(ctx context.Context, ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageText, b)
}

func readServer(ctx context.Context, ws *websocket.Conn) (any, error) {
	typ, data, err := ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, fmt.Errorf("%w: binary message from the tracker", protocol.ErrBadMessage)
	}
	return protocol.DecodeServer(data)
}
