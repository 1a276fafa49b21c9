package main

import (
	"flag"
	"testing"
)

func TestWebRTCInterfaces(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   map[string]bool // interface → allowed
	}{
		{[]string{"--webrtc-loopback-only"}, map[string]bool{"lo": true, "veth1": false, "eth0": false}},
		{[]string{"--webrtc-loopback-only", "--webrtc-interfaces", "veth1"}, map[string]bool{"lo": true, "veth1": true, "eth0": false}},
		{[]string{"--webrtc-interfaces", "eth0,eth1"}, map[string]bool{"lo": false, "eth0": true, "eth1": true, "veth1": false}},
		{nil, map[string]bool{"lo": true, "eth0": true}}, // no filter: every interface
	} {
		var w webrtcFlags
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		w.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		c, _, err := w.config()
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for name, want := range tc.ok {
			got := c.InterfaceFilter == nil || c.InterfaceFilter(name)
			if got != want {
				t.Errorf("%v: interface %s allowed %v, want %v", tc.args, name, got, want)
			}
		}
	}
}
