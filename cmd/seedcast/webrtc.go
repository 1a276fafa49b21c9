package main

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/sfu"
)

// webrtcFlags configure ICE for the SFU and the publisher.
type webrtcFlags struct {
	loopbackOnly bool
	interfaces   string
	udpPorts     string
	udpMux       int
	natIPs       string
	iceServers   listFlag
}

func (w *webrtcFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&w.loopbackOnly, "webrtc-loopback-only", false, "ICE on 127.0.0.1 only (tests, single-machine demos)")
	fs.StringVar(&w.interfaces, "webrtc-interfaces", "", "ICE on these network interfaces only (comma-separated names; with --webrtc-loopback-only, these besides lo)")
	fs.IntVar(&w.udpMux, "webrtc-udp-mux", -1, "carry all ICE on this one UDP port (0: any free port; -1: a port per peer connection), writing packets in batches (sendmmsg)")
	fs.StringVar(&w.udpPorts, "webrtc-udp-ports", "", "UDP port range for ICE, e.g. 40000-40999 (default: any)")
	fs.StringVar(&w.natIPs, "webrtc-nat-ips", "", "public IPs to announce instead of the host's (comma-separated, 1:1 NAT)")
	fs.Var(&w.iceServers, "ice-server", "STUN/TURN URL offered to clients (repeatable)")
}

func (w *webrtcFlags) config() (sfu.ICEConfig, []webrtc.ICEServer, error) {
	var c sfu.ICEConfig
	if w.loopbackOnly {
		// A peer is failed after 6 s without consent (3 s disconnected, 3 s
		// more): long enough for a browser on a loaded machine, and for a
		// call to ride out a blip.
		c = sfu.LoopbackICE(6 * time.Second)
	} else {
		// Loopback candidates too, so that a publisher on the same machine (the
		// built-in demo) connects even where there is no other interface.
		c.IncludeLoopback = true
	}
	if w.interfaces != "" {
		names := strings.Split(w.interfaces, ",")
		loopback := w.loopbackOnly
		c.InterfaceFilter = func(name string) bool {
			return (loopback && name == "lo") || slices.Contains(names, name)
		}
	}
	if w.udpPorts != "" {
		lo, hi, ok := strings.Cut(w.udpPorts, "-")
		min, err1 := strconv.ParseUint(lo, 10, 16)
		max, err2 := strconv.ParseUint(hi, 10, 16)
		if !ok || err1 != nil || err2 != nil || min == 0 || min > max {
			return c, nil, fmt.Errorf("--webrtc-udp-ports %q: want LOW-HIGH", w.udpPorts)
		}
		c.UDPPortMin, c.UDPPortMax = uint16(min), uint16(max)
	}
	if w.natIPs != "" {
		c.NAT1To1IPs = strings.Split(w.natIPs, ",")
	}
	var servers []webrtc.ICEServer
	for _, u := range w.iceServers {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return c, nil, fmt.Errorf("--ice-server %q: want a stun:, turn: or turns: URL", u)
		}
		servers = append(servers, webrtc.ICEServer{URLs: []string{u}})
	}
	return c, servers, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
