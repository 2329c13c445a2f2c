package webadmin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/version"
)

//go:embed assets
var assets embed.FS

// CSP allows nothing but this origin's own scripts, styles, images and
// fetches: no inline code, no frames, no form posts elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Cookie and form field of the CSRF token.
const (
	sessionCookie = "qubes_claw_admin"
	csrfField     = "csrf"
)

// Server is the panel's HTTP handler.
type Server struct {
	backend Backend
	feed    *Feed
	log     *logrus.Entry
	refresh time.Duration
	hosts   map[string]bool
	origins map[string]bool
	key     []byte
	pages   *template.Template
	static  http.Handler
}

// NewServer returns the handler for a panel reached at addr (the bound
// listener's address: Host headers must name it).
func NewServer(cfg Config, addr string, b Backend, feed *Feed, log *logrus.Entry) (*Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		backend: b, feed: feed, log: log, refresh: cfg.Refresh,
		hosts: map[string]bool{}, origins: map[string]bool{},
		key: make([]byte, 32),
	}
	if _, err := rand.Read(s.key); err != nil {
		return nil, err
	}
	for _, h := range []string{host, "localhost"} {
		hp := net.JoinHostPort(h, port)
		s.hosts[hp] = true
		s.origins["http://"+hp] = true
	}
	s.pages, err = template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	s.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return s, nil
}

// Handler returns the panel's routes behind the security checks.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /partial/overview", s.partial)
	mux.HandleFunc("GET /api/state", s.state)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /revoke", s.revokeConfirm)
	mux.Handle("GET /static/", s.static)
	mux.HandleFunc("POST /action/remote/start", s.action("remote-started", func(r *http.Request) error { return s.backend.StartRemote(r.Context()) }))
	mux.HandleFunc("POST /action/remote/stop", s.action("remote-stopped", func(r *http.Request) error { return s.backend.StopRemote(r.Context()) }))
	mux.HandleFunc("POST /action/tunnel/restart", s.action("tunnel-restarted", func(r *http.Request) error { return s.backend.RestartTunnel(r.Context()) }))
	mux.HandleFunc("POST /action/revoke", s.revoke)
	return s.guard(mux)
}

// guard sets the security headers on every response and refuses requests
// that did not come from the panel's own origin.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// Not no-referrer: under it browsers send "Origin: null" with form
		// posts, which checkPost must refuse.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		// DNS rebinding: a page from evil.example whose name now resolves
		// to 127.0.0.1 still sends Host: evil.example.
		if !s.hosts[r.Host] {
			s.log.WithField("host", r.Host).Warn("refused a request for another host name")
			http.Error(w, "misdirected request: this panel answers only to "+s.hostList(), http.StatusMisdirectedRequest)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := s.checkPost(r); err != nil {
				s.log.WithError(err).WithField("path", r.URL.Path).Warn("refused a state-changing request")
				http.Error(w, "forbidden: "+err.Error()+" (reload the panel and try again)", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) hostList() string {
	var l []string
	for h := range s.hosts {
		l = append(l, h)
	}
	slices.Sort(l)
	return strings.Join(l, ", ")
}

// checkPost accepts a POST only from this origin, with the CSRF token that
// matches its session cookie.
func (s *Server) checkPost(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && !s.origins[o] {
		return fmt.Errorf("cross-origin request from %q", o)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return errors.New("cross-site request")
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return errors.New("no session cookie")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("bad form: %w", err)
	}
	want := s.token(c.Value)
	got := r.PostForm.Get(csrfField)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errors.New("missing or invalid CSRF token")
	}
	return nil
}

// token is the CSRF token of a session: an HMAC under a key made at start,
// so a restart invalidates every page.
func (s *Server) token(session string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(session))
	return hex.EncodeToString(m.Sum(nil))
}

// session returns the request's session, creating the cookie if needed.
func (s *Server) session(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(sessionCookie); err == nil && len(c.Value) == 64 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			return c.Value
		}
	}
	b := make([]byte, 32)
	rand.Read(b)
	v := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return v
}

// pageData is what the templates render.
type pageData struct {
	Overview
	History []Command
	CSRF    string
	Refresh int64
	Notice  string
	Error   string
	Version string
	VM      string
}

func (s *Server) data(w http.ResponseWriter, r *http.Request) pageData {
	o := s.backend.Overview(r.Context())
	return pageData{
		Overview: o, History: s.feed.History(), CSRF: s.token(s.session(w, r)),
		Refresh: s.refresh.Milliseconds(), Version: version.String(),
	}
}

// notices are the fixed texts an action's redirect may ask for: the page
// never echoes free text from its own URL.
var notices = map[string]string{
	"remote-started":   "qvm-remote-dom0 started for this boot.",
	"remote-stopped":   "qvm-remote-dom0 stopped.",
	"tunnel-restarted": "The tunnel daemon was restarted.",
	"revoked":          "The VM's key was revoked: its next command will be refused.",
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	d := s.data(w, r)
	d.Notice = notices[r.URL.Query().Get("done")]
	s.render(w, http.StatusOK, "index.html", d)
}

func (s *Server) partial(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "partial", s.data(w, r))
}

func (s *Server) render(w http.ResponseWriter, code int, name string, d any) {
	var b strings.Builder
	if err := s.pages.ExecuteTemplate(&b, name, d); err != nil {
		s.log.WithError(err).WithField("template", name).Error("render")
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprint(w, b.String())
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Overview
		History []Command `json:"history"`
	}{s.backend.Overview(r.Context()), s.feed.History()})
}

// events streams audit events: the kept ones after Last-Event-ID (all of
// them on a first connect), then each new one as it arrives.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	var seq uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		seq, _ = strconv.ParseUint(v, 10, 64)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	wake, cancel := s.feed.Subscribe()
	defer cancel()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		evs, last := s.feed.Since(seq)
		for _, e := range evs {
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "id: %d\nevent: audit\ndata: %s\n\n", e.Seq, b)
		}
		seq = last
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-ping.C:
			// A comment keeps idle connections from being reaped and tells
			// the page the server is alive.
			fmt.Fprint(w, ": ping\n\n")
		}
	}
}

// action runs a state change and redirects to the overview (POST, then
// GET, so a reload does not repeat it).
func (s *Server) action(done string, f func(*http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		log := s.log.WithField("action", done)
		if err := f(r); err != nil {
			log.WithError(err).Warn("action failed")
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		log.Info("action done")
		http.Redirect(w, r, "/?done="+done, http.StatusSeeOther)
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	d := s.data(w, r)
	d.Error = err.Error()
	s.render(w, code, "index.html", d)
}

// revokeConfirm is the confirmation page: it names the VM and its
// fingerprint and asks for the VM's name to be typed.
func (s *Server) revokeConfirm(w http.ResponseWriter, r *http.Request) {
	vm := r.URL.Query().Get("vm")
	d := s.data(w, r)
	if !proto.ValidVMName(vm) {
		d.Error = "no such VM"
		s.render(w, http.StatusBadRequest, "index.html", d)
		return
	}
	d.VM = vm
	s.render(w, http.StatusOK, "revoke.html", d)
}

// revoke revokes a VM's key once the form carries the VM's name typed again.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	vm := r.PostForm.Get("vm")
	if !proto.ValidVMName(vm) {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("invalid VM name %q", vm))
		return
	}
	if r.PostForm.Get("confirm") != vm {
		d := s.data(w, r)
		d.VM = vm
		d.Error = "The name typed does not match; nothing was revoked."
		s.render(w, http.StatusUnprocessableEntity, "revoke.html", d)
		return
	}
	log := s.log.WithField("action", "revoke").WithField("vm", vm)
	if err := s.backend.Revoke(r.Context(), vm); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrNotAuthorized) {
			code = http.StatusNotFound
		}
		log.WithError(err).Warn("action failed")
		s.fail(w, r, code, err)
		return
	}
	log.Info("action done")
	http.Redirect(w, r, "/?done=revoked", http.StatusSeeOther)
}

// Serve serves h on ln until ctx ends, then shuts down within grace.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Request contexts end with the daemon's, which also ends the event
		// streams that would otherwise hold Shutdown to its bound.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		err := srv.Shutdown(sctx)
		if err != nil {
			err = errors.Join(err, srv.Close())
		}
		done <- err
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-done
}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("15:04:05")
	},
	"dur": func(d time.Duration) string {
		switch {
		case d <= 0:
			return ""
		case d < time.Second:
			return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
		case d < time.Minute:
			return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
		}
		return d.Round(time.Second).String()
	},
	"query": url.QueryEscape,
	"bytes": func(n int64) string {
		switch {
		case n < 1<<10:
			return strconv.FormatInt(n, 10) + " B"
		case n < 1<<20:
			return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
		case n < 1<<30:
			return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
		}
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	},
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"lower": strings.ToLower,
}
