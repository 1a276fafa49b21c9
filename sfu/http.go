package sfu

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/pion/webrtc/v4"
)

// Media types of WHIP/WHEP bodies.
const (
	contentTypeSDP      = "application/sdp"
	contentTypeTrickle  = "application/trickle-ice-sdpfrag"
	endpointWHIP        = "whip"
	endpointWHEP        = "whep"
	corsAllowHeaders    = "Authorization, Content-Type, If-Match"
	corsExposeHeaders   = "Location, Link, ETag, Accept-Patch, Accept-Post"
	methodsResource     = "POST, OPTIONS"
	methodsSessionURL   = "PATCH, DELETE, OPTIONS"
	wwwAuthenticateWHIP = `Bearer realm="whip"`
	// retryAfter is sent with 429 and 503: pending sessions are reaped
	// within ConnectTimeout (10 s by default).
	retryAfter = "5"
)

// Handler returns the WHIP and WHEP HTTP handler (RFC 9725):
//
//	POST   /whip/{stream}            publish (Authorization: Bearer <stream key>)
//	PATCH  /whip/{stream}/{session}  trickle ICE (application/trickle-ice-sdpfrag)
//	DELETE /whip/{stream}/{session}  end the broadcast
//	POST   /whep/{stream}[?layer=rid] play
//	PATCH  /whep/{stream}/{session}  trickle ICE
//	DELETE /whep/{stream}/{session}  stop playing
//
// plus OPTIONS (CORS preflight) on each. Mount it at the root of a mux
// (mux.Handle("/whip/", h); mux.Handle("/whep/", h)); Location headers are
// built from the request path.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/whip/{stream}", func(w http.ResponseWriter, r *http.Request) {
		s.serveResource(w, r, endpointWHIP)
	})
	mux.HandleFunc("/whep/{stream}", func(w http.ResponseWriter, r *http.Request) {
		s.serveResource(w, r, endpointWHEP)
	})
	mux.HandleFunc("/whip/{stream}/{session}", func(w http.ResponseWriter, r *http.Request) {
		s.serveSession(w, r, endpointWHIP)
	})
	mux.HandleFunc("/whep/{stream}/{session}", func(w http.ResponseWriter, r *http.Request) {
		s.serveSession(w, r, endpointWHEP)
	})
	return mux
}

// statusRecorder remembers the status code for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) count(endpoint, method string, code int) {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other"
	}
	s.m.httpResponses.WithLabelValues(endpoint, method, strconv.Itoa(code)).Inc()
}

func (s *Server) cors(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", s.p.AllowOrigin)
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	if s.p.AllowOrigin != "*" {
		h.Add("Vary", "Origin")
	}
}

func (s *Server) preflight(w http.ResponseWriter, methods string, endpoint string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", methods)
	if strings.HasPrefix(methods, http.MethodPost) {
		h.Set("Accept-Post", contentTypeSDP)
	} else {
		h.Set("Accept-Patch", contentTypeTrickle)
	}
	w.WriteHeader(http.StatusNoContent)
}

// httpError writes a plain-text error.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// readBody reads a request body of the given media type within the size
// limit, writing the error response itself when it fails.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, want string) ([]byte, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, want) {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type must be "+want)
		return nil, false
	}
	if r.ContentLength > s.p.MaxBodyBytes {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", s.p.MaxBodyBytes))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.p.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", s.p.MaxBodyBytes))
		} else {
			httpError(w, http.StatusBadRequest, "reading body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// linkHeaders announces the configured ICE servers (RFC 9725 section 4.6).
func (s *Server) linkHeaders(w http.ResponseWriter) {
	for _, is := range s.p.ICEServers {
		for _, u := range is.URLs {
			v := "<" + u + `>; rel="ice-server"`
			if is.Username != "" {
				v += fmt.Sprintf(`; username=%q`, is.Username)
			}
			if c, ok := is.Credential.(string); ok && c != "" {
				v += fmt.Sprintf(`; credential=%q; credential-type="password"`, c)
			}
			w.Header().Add("Link", v)
		}
	}
}

// statusOf maps an error of Publish/Subscribe to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrStreamBusy), errors.Is(err, ErrRoomKind):
		return http.StatusConflict
	case errors.Is(err, ErrNotLive):
		return http.StatusNotFound
	case errors.Is(err, ErrBadOffer), errors.Is(err, ErrUnsupportedCodec),
		errors.Is(err, ErrBadStreamName), errors.Is(err, ErrBadTrickle):
		return http.StatusBadRequest
	case errors.Is(err, ErrTooMany):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrClosed), errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// serveResource handles POST (and OPTIONS) on /whip/{stream} and
// /whep/{stream}.
func (s *Server) serveResource(rw http.ResponseWriter, r *http.Request, endpoint string) {
	w := &statusRecorder{ResponseWriter: rw}
	defer func() { s.count(endpoint, r.Method, w.code) }()
	s.cors(w)
	stream := r.PathValue("stream")
	switch r.Method {
	case http.MethodOptions:
		s.preflight(w, methodsResource, endpoint)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", methodsResource)
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if err := checkStreamName(stream); err != nil {
		httpError(w, http.StatusNotFound, err.Error())
		return
	}
	token := bearer(r)
	if endpoint == endpointWHIP {
		err := ErrUnauthorized
		if s.p.PublishAuth != nil {
			err = s.p.PublishAuth.CheckPublish(stream, token)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", wwwAuthenticateWHIP)
			httpError(w, http.StatusUnauthorized, "missing or wrong stream key")
			return
		}
	} else if s.p.PlayAuth != nil {
		if err := s.p.PlayAuth.CheckPlay(stream, token); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="whep"`)
			httpError(w, http.StatusUnauthorized, "missing or wrong token")
			return
		}
	}
	body, ok := s.readBody(w, r, contentTypeSDP)
	if !ok {
		return
	}
	var id, answer string
	var err error
	addr := s.p.ClientIP(r)
	if endpoint == endpointWHIP {
		id, answer, err = s.Publish(r.Context(), stream, string(body), PublishOptions{Addr: addr})
	} else {
		id, answer, err = s.Subscribe(r.Context(), stream, string(body),
			SubscribeOptions{Layer: r.URL.Query().Get("layer"), Addr: addr})
	}
	if err != nil {
		code := statusOf(err)
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.log.Info(endpoint+" refused", "stream", stream, "status", code, "err", err)
		msg := err.Error()
		if code == http.StatusInternalServerError {
			msg = "internal error"
		}
		httpError(w, code, msg)
		return
	}
	ss, _ := s.session(id)
	h := w.Header()
	h.Set("Location", strings.TrimSuffix(r.URL.Path, "/")+"/"+id)
	h.Set("Content-Type", contentTypeSDP)
	h.Set("Accept-Patch", contentTypeTrickle)
	if ss != nil {
		h.Set("ETag", `"`+ss.etag+`"`)
	}
	s.linkHeaders(w)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// serveSession handles PATCH, DELETE and OPTIONS on a session URL.
func (s *Server) serveSession(rw http.ResponseWriter, r *http.Request, endpoint string) {
	w := &statusRecorder{ResponseWriter: rw}
	defer func() { s.count(endpoint, r.Method, w.code) }()
	s.cors(w)
	switch r.Method {
	case http.MethodOptions:
		s.preflight(w, methodsSessionURL, endpoint)
		return
	case http.MethodPatch, http.MethodDelete:
	default:
		w.Header().Set("Allow", methodsSessionURL)
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	want := rolePublisher
	if endpoint == endpointWHEP {
		want = roleSubscriber
	}
	ss, ok := s.session(r.PathValue("session"))
	if !ok || ss.role != want || ss.room.name != r.PathValue("stream") {
		httpError(w, http.StatusNotFound, "no such session")
		return
	}
	if r.Method == http.MethodDelete {
		ss.close("DELETE")
		w.WriteHeader(http.StatusOK)
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != `"`+ss.etag+`"` {
		httpError(w, http.StatusPreconditionFailed, "ETag does not match the ICE session")
		return
	}
	body, ok := s.readBody(w, r, contentTypeTrickle)
	if !ok {
		return
	}
	frag, err := parseTrickleFragment(body)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if frag.Ufrag != "" && ss.ufrag != "" && frag.Ufrag != ss.ufrag {
		httpError(w, http.StatusNotImplemented, "ICE restarts are not supported; start a new session")
		return
	}
	for _, c := range frag.Candidates {
		init := webrtc.ICECandidateInit{Candidate: c.Candidate}
		if c.Mid != "" {
			mid := c.Mid
			init.SDPMid = &mid
		} else {
			idx := c.MLineIndex
			init.SDPMLineIndex = &idx
		}
		if err := ss.pc.AddICECandidate(init); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("%v: %v", ErrBadTrickle, err))
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
