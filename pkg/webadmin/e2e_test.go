package webadmin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/standin"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
	"github.com/qubes-claw/qubes-claw/pkg/webadmin"
)

func TestMain(m *testing.M) { simtest.Main(m) }

// repoRoot is two levels up from this package.
const repoRoot = "../.."

// simPanel is a simulated dom0 running qvm-remote-dom0 (serving VM work),
// an agent VM, optionally qubes-claw-tunnel, and the panel under its own
// systemd unit, as the package installs them.
type simPanel struct {
	t      testing.TB
	m      *simtest.Machine
	url    string // http://127.0.0.1:PORT
	tunnel bool   // qubes-claw-tunnel runs with a tunnel to the agent VM
	tport  int
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func newSimPanel(t testing.TB) *simPanel {
	t.Helper()
	m := simtest.New(t)
	p := &simPanel{t: t, m: m}
	m.Template("tpl")
	m.Install("tpl", filepath.Join(m.Bin, "qvm-remote"), "/usr/bin/qvm-remote", 0o755)
	// The tunnel daemon, once its binaries exist: tunnels to the agent VM's
	// LLM proxy (a real qubes-claw-proxy in the VM, on the stand-in
	// provider) and to its gateway port, through qubes-claw-connect, all in
	// the template before the AppVMs exist.
	p.tunnel = exists(filepath.Join(m.Bin, "qubes-claw-tunnel")) && exists(filepath.Join(m.Bin, "qubes-claw-connect"))
	var proxyPort int
	if p.tunnel {
		up := httptest.NewServer(standin.New())
		t.Cleanup(up.Close)
		proxyPort = freePort(t)
		m.Install("tpl", filepath.Join(m.Bin, "qubes-claw-connect"), "/usr/bin/qubes-claw-connect", 0o755)
		m.Symlink("tpl", "/usr/bin/qubes-claw-connect", "/etc/qubes-rpc/qubes-claw.Connect")
		m.WriteFile("tpl", "/etc/qubes-claw/qubes-claw-connect.yaml", []byte(fmt.Sprintf("ports: [%d, 18789]\n", proxyPort)), 0o644)
		m.Install("tpl", filepath.Join(m.Bin, "qubes-claw-proxy"), "/usr/bin/qubes-claw-proxy", 0o755)
		m.WriteFile("tpl", "/etc/systemd/system/test-proxy.service", []byte(fmt.Sprintf(`[Service]
Environment=QCPROXY_PROVIDER=openai
Environment=QCPROXY_LISTEN=127.0.0.1:%d
Environment=QCPROXY_OPENAI_API_KEY=sk-standin-key-0123
Environment=QCPROXY_OPENAI_BASE_URL=%s/openai/v1
ExecStart=/usr/bin/qubes-claw-proxy serve
`, proxyPort, up.URL)), 0o644)
	}
	m.AppVM("work", "tpl")
	m.AppVM("agent", "tpl")
	m.Tag("agent", "openclaw-server")
	m.MustRun("qvm-prefs", "agent", "autostart", "True")
	m.MustRun("qvm-features", "agent", "qubes-claw.description", "the OpenClaw agent")
	m.MustRun("qvm-service", "--enable", "agent", "qubes-claw-proxy")

	// qvm-remote-dom0 as its E2E tests run it, plus a log file the panel
	// follows (the simulator's journalctl cannot --follow).
	path := ""
	for _, kv := range m.Sim.DomainEnv(sim.Dom0, "root") {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	m.Install(sim.Dom0, filepath.Join(m.Bin, "qvm-remote-dom0"), "/usr/bin/qvm-remote-dom0", 0o755)
	m.Install(sim.Dom0, filepath.Join(repoRoot, "rpm", "qvm-remote-dom0.service"), "/usr/lib/systemd/system/qvm-remote-dom0.service", 0o644)
	m.WriteFile(sim.Dom0, "/etc/qubes/qvm-remote-dom0.yaml", []byte(fmt.Sprintf(`exec:
  path: %q
  home: /root
  pass_env: [%s, %s, %s, TMPDIR]
reopen_min: 100ms
reopen_max: 2s
log:
  file: /var/log/qvm-remote-dom0.log
`, path, sim.DirEnv, sim.DomainEnv, sim.RootEnv)), 0o644)
	if r := m.VM("work", "qvm-remote key gen"); r.Code != 0 {
		t.Fatalf("key gen: %v", r)
	}
	if r := m.Dom0("qvm-remote-dom0 authorize work"); r.Code != 0 {
		t.Fatalf("authorize: %v", r)
	}
	p.systemctl("start", "qvm-remote-dom0")

	extra := ""
	if p.tunnel {
		p.tport = freePort(t)
		ptport := freePort(t)
		m.Install(sim.Dom0, filepath.Join(m.Bin, "qubes-claw-tunnel"), "/usr/bin/qubes-claw-tunnel", 0o755)
		m.Install(sim.Dom0, filepath.Join(repoRoot, "rpm", "qubes-claw-tunnel.service"), "/usr/lib/systemd/system/qubes-claw-tunnel.service", 0o644)
		m.WriteFile(sim.Dom0, string(tunnel.Spec().SystemFile), []byte(fmt.Sprintf(`tunnels:
  - name: llm-proxy
    listen: 127.0.0.1:%d
    vm: agent
    port: %d
  - name: gateway
    listen: 127.0.0.1:%d
    vm: agent
    port: 18789
retry_interval: 500ms
`, ptport, proxyPort, p.tport)), 0o644)
		m.Host("qvm-start", "agent")
		if r := m.Run(simtest.Cmd{Argv: []string{"qvm-run", "-u", "root", "--pass-io", "agent", "systemctl start test-proxy"}}); r.Code != 0 {
			t.Fatalf("start the proxy in the agent VM: %v", r)
		}
		p.systemctl("start", "qubes-claw-tunnel")
		extra = fmt.Sprintf("proxy:\n  url: http://127.0.0.1:%d/health\ngateway:\n  url: http://127.0.0.1:%d/\n", ptport, p.tport)
	} else {
		t.Log("qubes-claw-tunnel or qubes-claw-connect not built: the tunnel rows are not checked")
		m.Host("qvm-start", "agent")
		extra = fmt.Sprintf("proxy:\n  url: http://127.0.0.1:%d/health\n", freePort(t))
	}

	// The panel as packaged: its unit and a config that only moves the port
	// (tests run in parallel) and refreshes faster.
	port := freePort(t)
	p.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	m.Install(sim.Dom0, filepath.Join(m.Bin, "qubes-claw-admin"), "/usr/bin/qubes-claw-admin", 0o755)
	m.Install(sim.Dom0, filepath.Join(repoRoot, "rpm", "qubes-claw-admin.service"), "/usr/lib/systemd/system/qubes-claw-admin.service", 0o644)
	m.WriteFile(sim.Dom0, "/etc/qubes/qubes-claw-admin.yaml", []byte(fmt.Sprintf(
		"listen: 127.0.0.1:%d\nrefresh: 500ms\n%s", port, extra)), 0o644)
	p.systemctl("start", "qubes-claw-admin")
	p.waitChannel("work")
	return p
}

func (p *simPanel) systemctl(args ...string) {
	p.t.Helper()
	if r := p.m.Dom0(append([]string{"systemctl"}, args...)...); r.Code != 0 {
		p.t.Fatalf("systemctl %q: %v\n%s", args, r, p.journal())
	}
}

func (p *simPanel) journal() string {
	var b strings.Builder
	for _, u := range []string{"qubes-claw-admin", "qvm-remote-dom0", "qubes-claw-tunnel"} {
		fmt.Fprintf(&b, "--- %s\n%s", u, p.m.Dom0("journalctl", "-u", u, "--no-pager", "-n", "40").Stdout)
	}
	return b.String()
}

// waitChannel is a bounded wait for dom0's channel to vm.
func (p *simPanel) waitChannel(vm string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r := p.m.VM(vm, "qvm-remote status"); strings.Contains(r.Stdout, "channel: open") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("no channel to %s\n%s", vm, p.journal())
}

// state reads /api/state.
func (p *simPanel) state() webadmin.Overview {
	p.t.Helper()
	resp, err := http.Get(p.url + "/api/state")
	if err != nil {
		p.t.Fatalf("GET /api/state: %v\n%s", err, p.journal())
	}
	defer resp.Body.Close()
	var st struct {
		webadmin.Overview
		History []webadmin.Command `json:"history"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		p.t.Fatal(err)
	}
	return st.Overview
}

// eventually polls cond for up to d (a bound, not a timing assertion).
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSimulator drives the panel over HTTP against the simulated machine:
// the overview against what the tools say, history of a real qvm-remote
// command, the transient start/stop and revoke, each checked at its source.
func TestSimulator(t *testing.T) {
	p := newSimPanel(t)
	keysOut := p.m.Dom0("qvm-remote-dom0 keys").Stdout
	fp := regexp.MustCompile(`SHA256:[0-9a-f]{16}`).FindString(keysOut)
	if fp == "" {
		t.Fatalf("qvm-remote-dom0 keys: %q", keysOut)
	}
	var o webadmin.Overview
	eventually(t, 20*time.Second, "overview shows the daemon and the agent", func() bool {
		o = p.state()
		return o.Remote.Running() && o.Agent.Running()
	})
	if o.Remote.AtBoot() || o.Remote.Enabled != "disabled" {
		t.Errorf("daemon enablement %q: started with systemctl start, it is transient", o.Remote.Enabled)
	}
	if len(o.Remote.Authorized) != 1 || o.Remote.Authorized[0].VM != "work" || o.Remote.Authorized[0].Fingerprint != fp {
		t.Errorf("authorized %+v, qvm-remote-dom0 keys says %q", o.Remote.Authorized, keysOut)
	}
	a := o.Agent
	if a.VM != "agent" || !a.Autostart || !contains(a.Tags, "openclaw-server") ||
		!a.Services["qubes-claw-proxy"] || a.Features["qubes-claw.description"] != "the OpenClaw agent" {
		t.Errorf("agent %+v", a)
	}
	if !p.tunnel {
		if o.Proxy.OK || o.Proxy.Err == "" {
			t.Errorf("proxy probe of a closed port: %+v", o.Proxy)
		}
	} else {
		eventually(t, 30*time.Second, "both tunnels up and the proxy healthy through one", func() bool {
			o = p.state()
			tu := o.Tunnel.Tunnels
			return len(tu) == 2 && tu[0].Up() && tu[1].Up() && o.Proxy.OK
		})
		if tu := o.Tunnel.Tunnels[1]; tu.Name != "gateway" || tu.VM != "agent" || tu.Port != 18789 || tu.Listen != fmt.Sprintf("127.0.0.1:%d", p.tport) {
			t.Errorf("tunnel %+v", tu)
		}
		if o.Proxy.Status != "healthy" || o.Proxy.Provider != "openai" {
			t.Errorf("proxy through the tunnel: %+v", o.Proxy)
		}
		// The probe went through the tunnel: its counters move (read in the
		// same pass as the probe, so only a later pass shows them).
		eventually(t, 10*time.Second, "the llm-proxy tunnel carried the probes", func() bool {
			tu := p.state().Tunnel.Tunnels
			return len(tu) == 2 && tu[0].Total > 0 && tu[0].BytesIn > 0 && tu[0].BytesOut > 0
		})
		// Nothing listens on the gateway port in the VM: reachable tunnel,
		// no gateway.
		if o.Gateway.OK {
			t.Errorf("gateway probe: %+v", o.Gateway)
		}
	}

	// A key's hex never reaches the page.
	key := strings.TrimSpace(readFile(t, p.m.Sim.Path(sim.Dom0, "/etc/qubes/remote.d/work.key")))
	if len(key) != 64 {
		t.Fatalf("key file: %q", key)
	}
	for _, path := range []string{"/", "/api/state", "/partial/overview"} {
		if body := get(t, p.url+path); strings.Contains(body, key) {
			t.Errorf("%s shows the key", path)
		}
	}

	// A command from the VM lands in the history with its exit code.
	if r := p.m.VM("work", "qvm-remote 'echo hi; exit 7'"); r.Code != 7 {
		t.Fatalf("qvm-remote: %v", r)
	}
	var st struct {
		History []webadmin.Command `json:"history"`
	}
	eventually(t, 10*time.Second, "the command in the history", func() bool {
		json.Unmarshal([]byte(get(t, p.url+"/api/state")), &st)
		return len(st.History) > 0 && st.History[0].Status != "running"
	})
	if h := st.History[0]; h.VM != "work" || h.Cmd != "echo hi; exit 7" || h.Exit == nil || *h.Exit != 7 || h.Status != "failed" || h.Duration <= 0 {
		t.Errorf("history %+v", h)
	}

	// Actions, through the page's own forms (cookie + CSRF token).
	c := newBrowserlessClient(t, p.url)
	c.post("/action/remote/stop", nil)
	if r := p.m.Dom0("systemctl is-active qvm-remote-dom0"); strings.TrimSpace(r.Stdout) == "active" {
		t.Errorf("stop: still %q", r.Stdout)
	}
	if st := p.state().Remote; st.Running() || st.Active != "inactive" {
		t.Errorf("after stop the overview says %q", st.Active)
	}
	c.post("/action/remote/start", nil)
	if r := p.m.Dom0("systemctl is-active qvm-remote-dom0"); strings.TrimSpace(r.Stdout) != "active" {
		t.Errorf("start: %q", r.Stdout)
	}
	if r := p.m.Dom0("systemctl is-enabled qvm-remote-dom0"); strings.TrimSpace(r.Stdout) != "disabled" {
		t.Errorf("start enabled the unit: %q", r.Stdout)
	}
	p.waitChannel("work")
	c.post("/action/revoke", url.Values{"vm": {"work"}, "confirm": {"work"}})
	if out := p.m.Dom0("qvm-remote-dom0 keys").Stdout; strings.Contains(out, "work") {
		t.Errorf("revoke: keys still lists work: %q", out)
	}
	if a := p.state().Remote.Authorized; len(a) != 0 {
		t.Errorf("after revoke the overview lists %+v", a)
	}
	if r := p.m.VM("work", "qvm-remote true"); r.Code == 0 {
		t.Errorf("a revoked VM's command ran: %v", r)
	}
	eventually(t, 10*time.Second, "the refusal counted", func() bool { return p.state().Remote.Queue.Refused > 0 })
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func get(t testing.TB, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

type formClient struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string
}

// newBrowserlessClient loads the page like a browser does: session cookie
// and CSRF token from the page itself.
func newBrowserlessClient(t testing.TB, base string) *formClient {
	jar, _ := cookiejar.New(nil)
	fc := &formClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp, err := fc.c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no CSRF token in the page")
	}
	fc.csrf = string(m[1])
	return fc
}

func (fc *formClient) post(path string, form url.Values) {
	fc.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", fc.csrf)
	resp, err := fc.c.PostForm(fc.base+path, form)
	if err != nil {
		fc.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		fc.t.Fatalf("POST %s: %s\n%s", path, resp.Status, b)
	}
}
