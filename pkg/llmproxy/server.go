// Package llmproxy is the agent VM's OpenAI-compatible endpoint
// (qubes-claw-proxy): one HTTP server on 127.0.0.1:32125 in front of the
// configured provider and its fallbacks. It owns what is common to every
// provider — client auth, routing of model ids, streaming and collecting
// chunks, fallback before the first byte, timeouts, error statuses and the
// usage log — and leaves the wire formats to the provider packages.
package llmproxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/version"
)

// Server serves the proxy's HTTP API.
type Server struct {
	cfg     Config
	log     *logrus.Entry
	chain   []chat.Provider
	started time.Time

	usageMu sync.Mutex
	usage   io.Writer
}

// NewServer returns a server for the provider chain (the primary first, then
// its fallbacks). usage, when not nil, receives one JSON line per request.
func NewServer(cfg Config, chain []chat.Provider, log *logrus.Entry, usage io.Writer) (*Server, error) {
	if len(chain) == 0 {
		return nil, errors.New("no provider configured")
	}
	return &Server{cfg: cfg, chain: chain, log: log.WithField("component", "proxy"), usage: usage, started: time.Now()}, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.authorized(s.chatCompletions))
	mux.HandleFunc("GET /v1/models", s.authorized(s.models))
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("/", s.unknownRoute)
	return mux
}

// Serve serves on ln until ctx is cancelled, then drains: running requests
// get Timeouts.Shutdown to finish, after which their contexts are cancelled
// (killing cursor-agent processes, closing upstream streams) and the server
// closes. ready, if not nil, is called once the server accepts requests.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Request contexts derive from base, not ctx: a shutdown signal must let
	// streams finish within the bound rather than cut them at once.
	base, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
		// No ReadTimeout/WriteTimeout: they would cut long streams; the body
		// read deadline and the per-request timeouts bound requests instead.
	}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Shutdown)
		defer cancel()
		err := srv.Shutdown(sctx)
		if err != nil {
			s.log.WithError(err).Warn("requests still running at the shutdown bound; aborting them")
			abort()
			err = srv.Close()
		}
		done <- err
	}()
	err := srv.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-done
}

// authorized checks the client's bearer token.
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	want := s.cfg.Token.Reveal()
	return func(w http.ResponseWriter, r *http.Request) {
		if want != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(want)) != 1 {
				writeError(w, &chat.Error{Status: http.StatusUnauthorized, Type: chat.TypeAuthentication,
					Code: "invalid_api_key", Message: "missing or wrong bearer token for qubes-claw-proxy"})
				return
			}
		}
		h(w, r)
	}
}

func (s *Server) unknownRoute(w http.ResponseWriter, r *http.Request) {
	allow := map[string]string{"/v1/chat/completions": "POST", "/v1/models": "GET, HEAD", "/health": "GET, HEAD"}[r.URL.Path]
	if allow != "" {
		w.Header().Set("Allow", allow)
		writeError(w, chat.Errorf(http.StatusMethodNotAllowed, chat.TypeInvalidRequest, "method_not_allowed",
			"%s is not allowed on %s", r.Method, r.URL.Path))
		return
	}
	writeError(w, chat.Errorf(http.StatusNotFound, chat.TypeNotFound, "unknown_url", "no route %s %s", r.Method, r.URL.Path))
}

// models lists the primary provider's models in OpenAI's format.
func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	type entry struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	p := s.chain[0]
	list := struct {
		Object string  `json:"object"`
		Data   []entry `json:"data"`
	}{Object: "list", Data: []entry{}}
	for _, m := range p.Models() {
		list.Data = append(list.Data, entry{ID: m.ID, Object: "model", Created: s.started.Unix(), OwnedBy: p.Name()})
	}
	writeJSON(w, http.StatusOK, list)
}

// health keeps the keys existing scripts read (status, authenticated,
// proxy_version). With ?deep=1 it probes the providers and answers 503 when
// the primary one is unusable.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	p := s.chain[0]
	out := map[string]any{
		"status":        "healthy",
		"authenticated": p.Authenticated(),
		"proxy_version": version.String(),
		"provider":      p.Name(),
	}
	var fallback []string
	for _, f := range s.chain[1:] {
		fallback = append(fallback, f.Name())
	}
	if fallback != nil {
		out["fallback"] = fallback
	}
	status := http.StatusOK
	if deep, _ := strconv.ParseBool(r.URL.Query().Get("deep")); deep {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeouts.Check)
		defer cancel()
		checks := map[string]string{}
		for i, pr := range s.chain {
			res := "ok"
			if err := pr.Check(ctx); err != nil {
				res = chat.AsError(err).Message
				if i == 0 {
					status = http.StatusServiceUnavailable
					out["status"] = "degraded"
				}
			}
			checks[pr.Name()] = res
		}
		out["checks"] = checks
	}
	writeJSON(w, status, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding failed","type":"api_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers with an OpenAI error object and, when known, Retry-After.
func writeError(w http.ResponseWriter, e *chat.Error) {
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(e.Body(), '\n'))
}

// newID returns a fresh chat completion id.
func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "chatcmpl-" + hex.EncodeToString(b[:])
}
