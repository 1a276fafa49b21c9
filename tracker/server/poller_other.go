//go:build !linux

package server

// poller, where there is no epoll, runs one reader goroutine per connection.
type poller struct {
	handle func(*peerConn)
}

func newPoller(handle func(*peerConn)) (*poller, error) { return &poller{handle: handle}, nil }

func (p *poller) watch(pc *peerConn) error {
	go func() {
		for !pc.isClosed() {
			p.handle(pc) // reads and handles one message
		}
	}()
	return nil
}

func (p *poller) rearm(*peerConn) error { return nil }
func (p *poller) forget(*peerConn)      {}
func (p *poller) close()                {}

// pollReadTimeout: a reader goroutine waits for messages as long as it takes.
const pollReadTimeout = 0
