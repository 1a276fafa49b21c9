package player

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/seedcast/seedcast/manifest"
)

// ErrBadParams reports Params that cannot work.
var ErrBadParams = errors.New("player: bad params")

// StreamInfo is what the pages show of a stream.
type StreamInfo struct {
	Name      string    `json:"name"`
	Live      bool      `json:"live"`
	LiveSince time.Time `json:"liveSince,omitzero"` // when its publisher connected; zero when offline
	Viewers   int       `json:"viewers"`            // swarm viewers: browsers and native nodes
	Browsers  int       `json:"browsers"`
	Natives   int       `json:"natives"`
}

// Params configures a Player.
type Params struct {
	Logger *slog.Logger // default: discard
	// Streams lists the streams the server carries (required).
	Streams func() []StreamInfo
	// Dashboard returns a stream's operator view as a JSON-encodable value
	// (nil: no dashboard, 404).
	Dashboard func(stream string) (any, bool)
	// EmbedOrigins are the origins (scheme://host[:port]) whose pages may
	// frame /embed/ and talk to it; empty or "*": any.
	EmbedOrigins []string
	// Calls serves the meeting and voice channel pages when set.
	Calls *CallPages
	// Uplink bounds the upload test (zero values: its defaults).
	Uplink UplinkParams
	// ClientIP returns the address a request comes from, for the upload
	// test's per-address pace; default the connection's remote address.
	ClientIP func(*http.Request) netip.Addr
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// CallPages connects the call pages to the server's call rooms.
type CallPages struct {
	NewRoom   func() string            // a fresh room id (GET /call redirects to it)
	ValidRoom func(string) bool        // whether a string is a room id
	Channels  func() any               // the voice channels with their members (JSON)
	Channel   func(string) (any, bool) // one channel's members (JSON); false: none
}

// Route is one route for the server's mux: Pattern in http.ServeMux
// syntax, Name for metrics.
type Route struct {
	Pattern, Name string
	Handler       http.Handler
}

// Player serves the pages.
type Player struct {
	p      Params
	log    *slog.Logger
	assets *assets
	pages  *template.Template
	uplink *uplink

	importMap   template.HTML // the <script type="importmap"> element
	importHash  string        // CSP hash of the import map script
	modules     []string      // hashed URLs of the player's modules
	embedAll    bool
	embedAllow  map[string]bool
	frameEmbeds string // CSP frame-ancestors of /embed/
}

// New loads the embedded assets and templates.
func New(p Params) (*Player, error) {
	if p.Streams == nil {
		return nil, fmt.Errorf("%w: Streams is required", ErrBadParams)
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.ClientIP == nil {
		p.ClientIP = func(r *http.Request) netip.Addr {
			ap, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil {
				return netip.Addr{}
			}
			return ap.Addr().Unmap()
		}
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	pl := &Player{p: p, log: p.Logger, assets: as, embedAllow: map[string]bool{}}
	for _, o := range p.EmbedOrigins {
		o = strings.TrimSpace(o)
		if o == "*" || o == "" {
			pl.embedAll = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%w: embed origin %q: want scheme://host[:port]", ErrBadParams, o)
		}
		pl.embedAllow[u.Scheme+"://"+u.Host] = true
	}
	if len(p.EmbedOrigins) == 0 {
		pl.embedAll = true
	}
	if pl.embedAll {
		pl.frameEmbeds = "*"
	} else {
		pl.frameEmbeds = strings.Join(slices.Sorted(maps.Keys(pl.embedAllow)), " ")
	}
	im, err := json.Marshal(map[string]any{"imports": as.importMap()})
	if err != nil {
		return nil, err
	}
	// json.Marshal escapes <, > and &, so the map cannot close its element.
	pl.importMap = template.HTML(`<script type="importmap">` + string(im) + `</script>`)
	sum := sha256.Sum256(im)
	pl.importHash = "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	for _, m := range []string{"watch", "embed", "ui", "player", "node", "mse", "overlay", "chart", "settings", "format"} {
		pl.modules = append(pl.modules, as.URL("js/"+m+".js"))
	}
	pl.pages, err = template.New("").Funcs(template.FuncMap{"asset": as.URL}).ParseFS(webFS, "web/*.html")
	if err != nil {
		return nil, fmt.Errorf("player: templates: %w", err)
	}
	if pl.uplink, err = newUplink(p.Uplink, p.Now); err != nil {
		return nil, err
	}
	return pl, nil
}

// Routes returns the player's routes.
func (pl *Player) Routes() []Route {
	rs := []Route{
		{"GET /{$}", "home", http.HandlerFunc(pl.serveHome)},
		{"GET /watch/{stream}", "watch", http.HandlerFunc(pl.serveWatch)},
		{"GET /embed/{stream}", "embed", http.HandlerFunc(pl.serveEmbed)},
		{"GET /live/{stream}/dashboard", "dashboard", http.HandlerFunc(pl.serveDashboard)},
		{"GET /live/{stream}/dashboard.json", "dashboard_json", http.HandlerFunc(pl.serveDashboardJSON)},
		{"GET /api/streams", "api_streams", http.HandlerFunc(pl.serveStreams)},
		{"POST /api/uplink", "api_uplink", http.HandlerFunc(pl.serveUplink)},
		{"GET /assets/", "assets", http.HandlerFunc(pl.assets.serve)},
		{"GET /qr", "qr", http.HandlerFunc(pl.serveQR)},
	}
	if pl.p.Calls != nil {
		rs = append(rs,
			Route{"GET /call", "call_new", http.HandlerFunc(pl.serveNewCall)},
			Route{"GET /call/{room}", "call", http.HandlerFunc(pl.serveCall)},
			Route{"GET /voice/{channel}", "voice", http.HandlerFunc(pl.serveVoice)},
			Route{"GET /voice/{channel}/members", "voice_members", http.HandlerFunc(pl.serveVoiceMembers)},
			Route{"GET /api/voice", "api_voice", http.HandlerFunc(pl.serveChannels)},
			Route{"GET /contacts", "contacts", http.HandlerFunc(pl.serveContacts)},
		)
	}
	return rs
}

func (pl *Player) serveNewCall(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/call/"+pl.p.Calls.NewRoom(), http.StatusSeeOther)
}

func (pl *Player) serveCall(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	if !pl.p.Calls.ValidRoom(room) {
		http.Error(w, "no such meeting: a meeting link ends in 26 letters and digits", http.StatusNotFound)
		return
	}
	pl.callPage(w, "call.html", pageData{Title: "Meeting · Seedcast", Stream: room})
}

func (pl *Player) serveVoice(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("channel")
	if _, ok := pl.p.Calls.Channel(name); !ok {
		http.Error(w, "no such voice channel", http.StatusNotFound)
		return
	}
	pl.callPage(w, "voice.html", pageData{Title: "#" + name + " · Seedcast", Stream: name})
}

// serveContacts is the address book: this browser's identity and contact
// link, its contacts (kept in the browser, never here) and their presence,
// ringing calls, and the local call history.
func (pl *Player) serveContacts(w http.ResponseWriter, r *http.Request) {
	pl.callPage(w, "contacts.html", pageData{Title: "Contacts · Seedcast"})
}

func (pl *Player) serveVoiceMembers(w http.ResponseWriter, r *http.Request) {
	ci, ok := pl.p.Calls.Channel(r.PathValue("channel"))
	if !ok {
		http.Error(w, "no such voice channel", http.StatusNotFound)
		return
	}
	writeJSON(w, ci)
}

func (pl *Player) serveChannels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"channels": pl.p.Calls.Channels()})
}

// callPage renders a call page: the same policy as the other pages, and
// the camera, microphone and screen capture allowed to this origin.
func (pl *Player) callPage(w http.ResponseWriter, name string, d pageData) {
	w.Header().Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), autoplay=(self)")
	pl.page(w, name, d, "'self'")
}

// Handler returns the routes on a mux of their own (tests, or a server
// that does not count per route).
func (pl *Player) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range pl.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	return mux
}

// pageData is what every page template gets.
type pageData struct {
	Title     string
	Stream    string
	ImportMap template.HTML
	Embed     string   // allowed embedding origins, space-separated, or "*"
	Modules   []string // the player's modules, preloaded in parallel (hashed URLs)
}

// page renders a template with the pages' security headers: a strict
// content security policy (scripts only from this origin, the import map
// by its hash, wasm compilation allowed) and frame-ancestors as given.
func (pl *Player) page(w http.ResponseWriter, name string, d pageData, frameAncestors string) {
	d.ImportMap = pl.importMap
	d.Modules = pl.modules
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' "+pl.importHash+
		"; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:"+
		"; object-src 'none'; base-uri 'none'; frame-ancestors "+frameAncestors)
	if err := pl.pages.ExecuteTemplate(w, name, d); err != nil {
		pl.log.Warn("page", "page", name, "err", err)
	}
}

func (pl *Player) serveHome(w http.ResponseWriter, r *http.Request) {
	pl.page(w, "home.html", pageData{Title: "Seedcast"}, "'self'")
}

// stream checks the {stream} path value; it writes the 404 itself.
func (pl *Player) stream(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("stream")
	if !manifest.ValidName(name) {
		http.Error(w, "no such stream", http.StatusNotFound)
		return "", false
	}
	return name, true
}

func (pl *Player) serveWatch(w http.ResponseWriter, r *http.Request) {
	if name, ok := pl.stream(w, r); ok {
		pl.page(w, "watch.html", pageData{Title: name + " · Seedcast", Stream: name}, "'self'")
	}
}

func (pl *Player) serveEmbed(w http.ResponseWriter, r *http.Request) {
	if name, ok := pl.stream(w, r); ok {
		pl.page(w, "embed.html", pageData{Title: name, Stream: name, Embed: pl.frameEmbeds}, pl.frameEmbeds)
	}
}

func (pl *Player) serveDashboard(w http.ResponseWriter, r *http.Request) {
	name, ok := pl.stream(w, r)
	if !ok {
		return
	}
	if pl.p.Dashboard == nil {
		http.NotFound(w, r)
		return
	}
	pl.page(w, "dashboard.html", pageData{Title: name + " · dashboard · Seedcast", Stream: name}, "'self'")
}

func (pl *Player) serveDashboardJSON(w http.ResponseWriter, r *http.Request) {
	name, ok := pl.stream(w, r)
	if !ok {
		return
	}
	if pl.p.Dashboard == nil {
		http.NotFound(w, r)
		return
	}
	d, ok := pl.p.Dashboard(name)
	if !ok {
		http.Error(w, "no such stream", http.StatusNotFound)
		return
	}
	writeJSON(w, d)
}

func (pl *Player) serveStreams(w http.ResponseWriter, r *http.Request) {
	list := pl.p.Streams()
	if list == nil {
		list = []StreamInfo{}
	}
	writeJSON(w, map[string]any{"streams": list, "now": pl.p.Now().UTC()})
}

func writeJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		_, _ = io.WriteString(w, "\n")
	}
}
