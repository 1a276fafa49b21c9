// Package server is the tracker's network side, GET /tracker: one WebSocket
// per peer (github.com/gobwas/ws; on Linux an epoll poller, so that an idle
// connection holds no goroutine), over which peers join a stream, get and
// lose upstreams, relay WebRTC signaling to the peers they are linked with
// and report their health and what they received from whom; the origin's
// seed node binds there too. A connection silent for a while is pinged from
// the maintenance loop, through its write queue, and closed when it stays
// silent. Around
// it: GeoIP (Geo, with github.com/oschwald/geoip2-golang), the client address
// behind trusted proxies (ClientIP), viewer tokens for private streams
// (TokenIssuer) and Prometheus metrics (Metrics).
//
// Every decision is package tracker's (one tracker.Swarm per stream, called
// under that stream's lock); every message is package tracker/protocol's.
package server
