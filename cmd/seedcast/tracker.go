package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/origin"
	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/protocol"
	"github.com/seedcast/seedcast/tracker/server"
)

// trackerFlags configure the tracker of `seedcast serve`.
type trackerFlags struct {
	geoip, geoipASN string
	trustedProxies  listFlag
	trustedPeers    string
	connsPerIP      int
	substreams      int
	delay           time.Duration
	originSlots     int
	tokenKey        string
	private         listFlag
}

func (t *trackerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.geoip, "geoip", "", "MaxMind-format City database for peer locations (none: declared regions and IP prefixes)")
	fs.StringVar(&t.geoipASN, "geoip-asn", "", "MaxMind-format ASN database")
	fs.Var(&t.trustedProxies, "trusted-proxy", "address or CIDR of a proxy whose X-Forwarded-For is believed (repeatable)")
	fs.IntVar(&t.connsPerIP, "tracker-conns-per-ip", 16, "tracker connections allowed from one address")
	fs.StringVar(&t.trustedPeers, "trusted-peers", "127.0.0.0/8,::1/128", "networks (comma-separated CIDRs, or none) whose viewers' relay budgets are believed without probation and who may share an address or /24; the default lets a swarm on one machine work (behind a proxy, set --trusted-proxy so viewers are told apart)")
	fs.IntVar(&t.substreams, "substreams", 4, "substreams a stream is split into for push delivery")
	fs.DurationVar(&t.delay, "delay", protocol.DefaultDelay, "playback delay behind live that every viewer of a stream keeps, sent in the tracker's welcome (0.5s–30s): each hop of the push tree spends some of it, and audiences of tens of thousands build trees 7–8 hops deep (docs/benchmarks.md)")
	fs.IntVar(&t.originSlots, "origin-slots", 64, "substream links the origin seed serves per stream")
	fs.StringVar(&t.tokenKey, "viewer-token-key", "", "hex HMAC key (≥ 32 bytes) for viewer tokens of private streams")
	fs.Var(&t.private, "private-stream", "a stream that needs a viewer token (repeatable)")
}

func parseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxy %q: want an address or a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (t *trackerFlags) tokens() (*server.TokenIssuer, error) {
	if t.tokenKey == "" {
		if len(t.private) > 0 {
			return nil, errors.New("--private-stream needs --viewer-token-key")
		}
		return nil, nil
	}
	key, err := hex.DecodeString(t.tokenKey)
	if err != nil {
		return nil, fmt.Errorf("--viewer-token-key: %w", err)
	}
	return server.NewTokenIssuer(key)
}

// server builds the tracker over the origin's streams.
func (t *trackerFlags) server(srv *origin.Server, reg prometheus.Registerer, ice []webrtc.ICEServer, originSecret string, log *slog.Logger) (*server.Server, func(), error) {
	proxies, err := parseProxies(t.trustedProxies)
	if err != nil {
		return nil, nil, err
	}
	tokens, err := t.tokens()
	if err != nil {
		return nil, nil, err
	}
	var trusted []netip.Prefix
	if t.trustedPeers != "" && t.trustedPeers != "none" {
		for _, c := range strings.Split(t.trustedPeers, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(c))
			if err != nil {
				return nil, nil, fmt.Errorf("--trusted-peers %q: %w", c, err)
			}
			trusted = append(trusted, p.Masked())
		}
	}
	geo, err := server.OpenGeo(server.GeoParams{CityDB: t.geoip, ASNDB: t.geoipASN})
	if err != nil {
		return nil, nil, err
	}
	metrics, err := server.NewMetrics(reg)
	if err != nil {
		geo.Close()
		return nil, nil, err
	}
	var servers []protocol.ICEServer
	for _, s := range ice {
		servers = append(servers, protocol.ICEServer{URLs: s.URLs})
	}
	private := slices.Clone([]string(t.private))
	trk, err := server.New(server.Params{
		Logger: log, Metrics: metrics, Geo: geo, TrustedProxies: proxies, Tokens: tokens, ICEServers: servers,
		Swarm: tracker.SwarmParams{Substreams: t.substreams, Delay: t.delay, Trusted: trusted}, OriginSlots: t.originSlots, MaxConnsPerIP: t.connsPerIP,
		OriginSecret: originSecret,
		Streams: server.StreamsFunc(func(name string) (server.StreamInfo, bool) {
			st, ok := srv.Stream(name)
			if !ok {
				return server.StreamInfo{}, false
			}
			return server.StreamInfo{
				PublicKey: hex.EncodeToString(st.PublicKey()), Manifest: "/live/" + name + "/manifest",
				BitrateKbps: st.AverageKbps(), Private: slices.Contains(private, name),
			}, true
		}),
	})
	if err != nil {
		geo.Close()
		return nil, nil, err
	}
	return trk, func() { trk.Close(); geo.Close() }, nil
}

func tokenCommand(stdout io.Writer) *ffcli.Command {
	var (
		t      trackerFlags
		stream string
		ttl    time.Duration
	)
	fs := flag.NewFlagSet("seedcast token", flag.ContinueOnError)
	fs.StringVar(&t.tokenKey, "viewer-token-key", "", "hex HMAC key, as given to serve")
	fs.StringVar(&stream, "stream", "", "the private stream")
	fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	return &ffcli.Command{
		Name:       "token",
		ShortUsage: "seedcast token --viewer-token-key KEY --stream NAME [--ttl 1h]",
		ShortHelp:  "issue a viewer token for a private stream",
		FlagSet:    fs,
		Options:    envOptions(),
		Exec: func(context.Context, []string) error {
			issuer, err := t.tokens()
			if err != nil {
				return err
			}
			if issuer == nil || stream == "" {
				return errors.New("token: need --viewer-token-key and --stream")
			}
			fmt.Fprintln(stdout, issuer.Issue(stream, time.Now().Add(ttl)))
			return nil
		},
	}
}
