package webadmin

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
)

// fakeBackend records the actions and returns a fixed overview.
type fakeBackend struct {
	mu       sync.Mutex
	calls    []string
	ov       Overview
	RevokeFn func(vm string) error
}

func (f *fakeBackend) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeBackend) Overview(context.Context) Overview { return f.ov }
func (f *fakeBackend) StartRemote(context.Context) error { f.record("start"); return nil }
func (f *fakeBackend) StopRemote(context.Context) error  { f.record("stop"); return nil }
func (f *fakeBackend) RestartTunnel(context.Context) error {
	f.record("restart-tunnel")
	return nil
}
func (f *fakeBackend) Revoke(_ context.Context, vm string) error {
	f.record("revoke " + vm)
	if f.RevokeFn != nil {
		return f.RevokeFn(vm)
	}
	return nil
}

type panel struct {
	t    *testing.T
	url  string // http://127.0.0.1:PORT
	b    *fakeBackend
	feed *Feed
	c    *http.Client
}

// newPanel serves the handler on a real loopback listener, so Host headers
// are what a browser would send.
func newPanel(t *testing.T) *panel {
	t.Helper()
	b := &fakeBackend{ov: Overview{
		Time: time.Now(),
		Remote: RemoteStatus{
			UnitStatus: UnitStatus{Unit: "qvm-remote-dom0.service", Active: "active", Enabled: "disabled"},
			Authorized: []AuthorizedVM{{VM: "work", Fingerprint: "SHA256:0123456789abcdef", State: "Running"}},
		},
		Agent: AgentStatus{VM: "agent", State: "Running", Tags: []string{"openclaw-server"}, Services: map[string]bool{"qubes-claw-proxy": true}},
		Tunnel: TunnelsStatus{UnitStatus: UnitStatus{Unit: "qubes-claw-tunnel.service", Active: "active", Enabled: "enabled"},
			Tunnels: []TunnelState{
				{VMState: "Running", TunnelStatus: tunnel.TunnelStatus{Name: "proxy", Listen: "127.0.0.1:32125", VM: "agent", Port: 32125, Listening: true, VMReachable: true, Active: 2, BytesIn: 2048, BytesOut: 5 << 20}},
				{TunnelStatus: tunnel.TunnelStatus{Name: "gateway", Listen: "127.0.0.1:18789", VM: "agent", Port: 18789, Listening: true, VMReachable: false, DownReason: "VM is not running", LastError: "qrexec: refused"}},
			}},
		Proxy: ProbeStatus{URL: "http://127.0.0.1:32125/health", OK: true, Status: "healthy", Provider: "openai"},
	}}
	feed := NewFeed(100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	srv, err := NewServer(cfg, ln.Addr().String(), b, feed, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv.Handler(), time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &panel{t: t, url: "http://" + ln.Addr().String(), b: b, feed: feed, c: c}
}

func (p *panel) do(req *http.Request) (*http.Response, string) {
	p.t.Helper()
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (p *panel) get(path string) (*http.Response, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.url+path, nil)
	return p.do(req)
}

func (p *panel) post(path string, form url.Values, hdr ...string) (*http.Response, string) {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return p.do(req)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

// token loads the page (which sets the session cookie) and returns its
// CSRF token.
func (p *panel) token() string {
	p.t.Helper()
	_, body := p.get("/")
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		p.t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

func TestEndpoints(t *testing.T) {
	p := newPanel(t)
	for _, tt := range []struct {
		path, ctype string
		want        []string
	}{
		{"/", "text/html", []string{"qvm-remote", "SHA256:0123456789abcdef", "transient", "qvm-remote-dom0 enable", "/static/app.js", "openai"}},
		{"/partial/overview", "text/html", []string{`id="remote"`, "agent", "openclaw-server", "healthy", `data-tunnel="proxy"`, "5.0 MiB", "VM is not running"}},
		{"/api/state", "application/json", []string{`"fingerprint":"SHA256:0123456789abcdef"`, `"history":[]`}},
		{"/revoke?vm=work", "text/html", []string{"Revoke <span class=\"mono\">work</span>?", `name="confirm"`, "SHA256:0123456789abcdef"}},
		{"/static/app.js", "text/javascript", []string{"EventSource"}},
		{"/static/style.css", "text/css", []string{".c-auth-fail"}},
		{"/static/icon.svg", "image/svg+xml", []string{"<svg"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := p.get(tt.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s\n%s", resp.Status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tt.ctype)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != CSP {
				t.Errorf("CSP %q", got)
			}
			for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("no %s header", h)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q", w)
				}
			}
		})
	}
	t.Run("unknown path", func(t *testing.T) {
		if resp, _ := p.get("/nope"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %s", resp.Status)
		}
	})
	t.Run("revoke of an invalid name", func(t *testing.T) {
		if resp, _ := p.get("/revoke?vm=" + url.QueryEscape("<script>")); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %s", resp.Status)
		}
	})
}

// TestForeignHost: DNS rebinding sends the attacker's name as Host; every
// endpoint, GET or POST, must refuse it before doing anything.
func TestForeignHost(t *testing.T) {
	p := newPanel(t)
	tok := p.token()
	for _, path := range []string{"/", "/partial/overview", "/api/state", "/events", "/revoke?vm=work", "/static/app.js",
		"/action/remote/start", "/action/remote/stop", "/action/tunnel/restart", "/action/revoke"} {
		for _, host := range []string{"evil.example", "evil.example:" + strings.Split(p.url, ":")[2], "127.0.0.1", "127.0.0.2:" + strings.Split(p.url, ":")[2]} {
			method := http.MethodGet
			var body io.Reader
			if strings.HasPrefix(path, "/action/") {
				method = http.MethodPost
				body = strings.NewReader(url.Values{"csrf": {tok}, "vm": {"work"}, "confirm": {"work"}}.Encode())
			}
			req, _ := http.NewRequest(method, p.url+path, body)
			req.Host = host
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, text := p.do(req)
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("%s %s with Host %s: %s", method, path, host, resp.Status)
			}
			if strings.Contains(text, "SHA256:") {
				t.Errorf("%s %s with Host %s leaked state", method, path, host)
			}
		}
	}
	if c := p.b.Calls(); len(c) > 0 {
		t.Errorf("actions ran for a foreign host: %v", c)
	}
	// localhost with the panel's port is the panel's own name.
	req, _ := http.NewRequest(http.MethodGet, p.url+"/", nil)
	req.Host = "localhost:" + strings.Split(p.url, ":")[2]
	if resp, _ := p.do(req); resp.StatusCode != http.StatusOK {
		t.Errorf("localhost: %s", resp.Status)
	}
}

func TestCSRF(t *testing.T) {
	p := newPanel(t)
	tok := p.token()
	other := newPanel(t).token() // a valid token of another panel
	for _, tt := range []struct {
		name string
		form url.Values
		hdr  []string
		// noCookie drops the session cookie.
		noCookie bool
	}{
		{name: "no token", form: url.Values{}},
		{name: "empty token", form: url.Values{"csrf": {""}}},
		{name: "wrong token", form: url.Values{"csrf": {strings.Repeat("0", 64)}}},
		{name: "another panel's token", form: url.Values{"csrf": {other}}},
		{name: "token without its cookie", form: url.Values{"csrf": {tok}}, noCookie: true},
		{name: "cross-origin", form: url.Values{"csrf": {tok}}, hdr: []string{"Origin", "http://evil.example"}},
		{name: "null origin", form: url.Values{"csrf": {tok}}, hdr: []string{"Origin", "null"}},
		{name: "cross-site fetch", form: url.Values{"csrf": {tok}}, hdr: []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/action/remote/start", "/action/remote/stop", "/action/tunnel/restart", "/action/revoke"} {
				form := url.Values{"vm": {"work"}, "confirm": {"work"}}
				for k, v := range tt.form {
					form[k] = v
				}
				c := p.c
				if tt.noCookie {
					p.c = &http.Client{CheckRedirect: c.CheckRedirect}
				}
				resp, body := p.post(path, form, tt.hdr...)
				p.c = c
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("POST %s: %s\n%s", path, resp.Status, body)
				}
			}
		})
	}
	if c := p.b.Calls(); len(c) > 0 {
		t.Fatalf("actions ran without a valid token: %v", c)
	}
	t.Run("GET does not act", func(t *testing.T) {
		if resp, _ := p.get("/action/remote/start?csrf=" + tok); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %s", resp.Status)
		}
	})
	t.Run("valid token, same origin", func(t *testing.T) {
		for path, call := range map[string]string{
			"/action/remote/start": "start", "/action/remote/stop": "stop", "/action/tunnel/restart": "restart-tunnel",
		} {
			resp, body := p.post(path, url.Values{"csrf": {tok}}, "Origin", p.url, "Sec-Fetch-Site", "same-origin")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/?done=") {
				t.Errorf("POST %s: %s %s\n%s", path, resp.Status, resp.Header.Get("Location"), body)
			}
			if c := p.b.Calls(); len(c) == 0 || c[len(c)-1] != call {
				t.Errorf("POST %s: calls %v", path, c)
			}
		}
		resp, body := p.get("/?done=remote-started")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "started for this boot") {
			t.Errorf("notice missing: %s", resp.Status)
		}
	})
}

func TestRevokeConfirmation(t *testing.T) {
	p := newPanel(t)
	tok := p.token()
	resp, body := p.post("/action/revoke", url.Values{"csrf": {tok}, "vm": {"work"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "does not match") {
		t.Fatalf("unconfirmed revoke: %s\n%s", resp.Status, body)
	}
	resp, _ = p.post("/action/revoke", url.Values{"csrf": {tok}, "vm": {"work"}, "confirm": {"Work"}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("revoke confirmed with another name: %s", resp.Status)
	}
	if c := p.b.Calls(); len(c) > 0 {
		t.Fatalf("revoked without confirmation: %v", c)
	}
	resp, _ = p.post("/action/revoke", url.Values{"csrf": {tok}, "vm": {"bad name"}, "confirm": {"bad name"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("invalid name: %s", resp.Status)
	}
	resp, body = p.post("/action/revoke", url.Values{"csrf": {tok}, "vm": {"work"}, "confirm": {"work"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/?done=revoked" {
		t.Fatalf("confirmed revoke: %s\n%s", resp.Status, body)
	}
	if c := p.b.Calls(); len(c) != 1 || c[0] != "revoke work" {
		t.Errorf("calls %v", c)
	}
	p.b.RevokeFn = func(vm string) error { return fmt.Errorf("%s: %w", vm, ErrNotAuthorized) }
	resp, _ = p.post("/action/revoke", url.Values{"csrf": {tok}, "vm": {"other"}, "confirm": {"other"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoke of an unauthorized VM: %s", resp.Status)
	}
}

// TestEvents reads the stream: the backlog first, then a new line live, and
// after a reconnect with Last-Event-ID only what came since.
func TestEvents(t *testing.T) {
	p := newPanel(t)
	p.feed.Add(Event{Category: "EXEC", VM: "work", ID: "a1", Msg: "command started"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/events", nil)
	resp, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	next := func() (id, data string) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && data != "":
				return id, data
			}
		}
	}
	if id, data := next(); id != "1" || !strings.Contains(data, `"category":"EXEC"`) {
		t.Fatalf("backlog: id %s data %s", id, data)
	}
	p.feed.Add(Event{Category: "DONE", VM: "work", ID: "a1", Msg: "command done"})
	if id, data := next(); id != "2" || !strings.Contains(data, `"category":"DONE"`) {
		t.Fatalf("live: id %s data %s", id, data)
	}
	cancel()

	p.feed.Add(Event{Category: "AUTH-FAIL", VM: "evil", Msg: "bad token"})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx2, http.MethodGet, p.url+"/events", nil)
	req.Header.Set("Last-Event-ID", "2")
	resp2, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	r = bufio.NewReader(resp2.Body)
	if id, data := next(); id != "3" || !strings.Contains(data, "AUTH-FAIL") {
		t.Fatalf("resume: id %s data %s", id, data)
	}
}

// TestAssetsSelfContained: dom0 is offline, so no embedded asset may name
// another origin (a CDN, a web font), and the page loads only /static/.
func TestAssetsSelfContained(t *testing.T) {
	ext := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(assets, path)
		s := strings.ReplaceAll(string(b), `xmlns="http://www.w3.org/2000/svg"`, "") // a namespace, not a fetch
		if m := ext.FindString(s); m != "" {
			t.Errorf("%s references %q", path, m)
		}
		if strings.HasSuffix(path, ".html") && regexp.MustCompile(`<script>|<style|style="|\son[a-z]+=`).MatchString(s) {
			t.Errorf("%s has inline script or style (the CSP forbids it)", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"ipv6 loopback", func(c *Config) { c.Listen = "[::1]:9876" }, true},
		{"all interfaces", func(c *Config) { c.Listen = "0.0.0.0:9876" }, false},
		{"LAN address", func(c *Config) { c.Listen = "10.137.0.1:9876" }, false},
		{"host name", func(c *Config) { c.Listen = "localhost:9876" }, false},
		{"no port", func(c *Config) { c.Listen = "127.0.0.1" }, false},
		{"remote proxy URL", func(c *Config) { c.Proxy.URL = "http://10.0.0.1:32125/health" }, false},
		{"https probe", func(c *Config) { c.Gateway.URL = "https://127.0.0.1:18789/" }, false},
		{"named agent", func(c *Config) { c.Agent.VM = "agent" }, true},
		{"bad agent name", func(c *Config) { c.Agent.VM = "a b" }, false},
		{"tiny refresh", func(c *Config) { c.Refresh = time.Millisecond }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.mod(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
