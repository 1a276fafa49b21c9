//go:build linux

package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller watches idle connections with epoll, so that a connection costs no
// goroutine and no read buffer while it has nothing to say: a goroutine runs
// only while a message is read and handled. Each connection is armed one-shot
// and re-armed after its message is handled, so its messages are handled one
// at a time, in order.
type poller struct {
	epfd   int
	handle func(*peerConn)
	mu     sync.Mutex
	conns  map[int32]*peerConn
	closed atomic.Bool
	done   chan struct{}
}

func newPoller(handle func(*peerConn)) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: epfd, handle: handle, conns: map[int32]*peerConn{}, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// fdOf returns the file descriptor of a TCP (or other syscall) connection.
func fdOf(pc *peerConn) (int, error) {
	sc, ok := pc.nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("tracker: connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}

const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// errWatchClosed is returned by watch for a connection closed already.
var errWatchClosed = errors.New("tracker: connection closed before it was watched")

// watch starts watching pc; its handler runs when pc has data. pc.fd is
// written under p.mu, where forget reads it: the server may close pc (and
// forget it) while its join is still being handled.
func (p *poller) watch(pc *peerConn) error {
	fd, err := fdOf(pc)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if pc.isClosed() {
		p.mu.Unlock()
		return errWatchClosed
	}
	pc.fd = fd
	p.conns[int32(fd)] = pc
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: pollEvents, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.forget(pc)
		return err
	}
	return nil
}

// rearm watches pc again after one of its messages was handled.
func (p *poller) rearm(pc *peerConn) error {
	ev := unix.EpollEvent{Events: pollEvents, Fd: int32(pc.fd)}
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, pc.fd, &ev)
}

// forget stops watching pc; call it before the connection is closed (its
// descriptor number may be reused at once).
func (p *poller) forget(pc *peerConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[int32(pc.fd)] == pc {
		delete(p.conns, int32(pc.fd))
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, pc.fd, nil)
	}
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for !p.closed.Load() {
		n, err := unix.EpollWait(p.epfd, events, 200)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			pc := p.conns[ev.Fd]
			p.mu.Unlock()
			if pc != nil {
				go p.handle(pc)
			}
		}
	}
}

func (p *poller) close() {
	p.closed.Store(true)
	<-p.done
	unix.Close(p.epfd)
}

const pollReadTimeout = messageTimeout
