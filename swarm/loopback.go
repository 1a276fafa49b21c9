package swarm

import "github.com/pion/webrtc/v4"

// LoopbackAPI is a pion API whose ICE gathers only UDP4 candidates on the
// loopback interface, so that peers on one machine (tests, benchmarks, the
// README's one-machine swarm) connect over 127.0.0.1.
func LoopbackAPI() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}
