package tunnel_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
	"github.com/qubes-claw/qubes-claw/pkg/testwait"
)

func TestMain(m *testing.M) { simtest.Main(m) }

// helperEnv selects the helper mode of this test binary, run inside a VM as
// the services the tunnel reaches: "HTTP:ECHO" ports.
const helperEnv = "TUNNEL_E2E_SERVE"

// TestHelperServer is not a test: it is the helper's entry point. It serves
// GET /health on the first port; on the second it echoes every byte back and
// half-closes after the client's EOF, so one connection carries both
// directions at once.
func TestHelperServer(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return
	}
	httpPort, echoPort, _ := strings.Cut(spec, ":")
	hl, err := net.Listen("tcp4", "127.0.0.1:"+httpPort)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	el, err := net.Listen("tcp4", "127.0.0.1:"+echoPort)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				os.Exit(1)
			}
			go func() {
				defer c.Close()
				io.CopyBuffer(c, c, make([]byte, 256<<10))
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	http.Serve(hl, mux)
	os.Exit(1)
}

// agent is a machine with a template carrying qubes-claw-connect as
// qubes-claw.Connect (where a package puts it), an AppVM "agent" tagged
// openclaw-server, and the helper servers running in it.
type agent struct {
	m                  *simtest.Machine
	httpPort, echoPort int
}

func newAgent(t testing.TB, isolation bool) *agent {
	t.Helper()
	var opts []simtest.Option
	httpPort, echoPort := 32125, 18789
	if isolation {
		simtest.SkipUnlessIsolation(t)
		opts = append(opts, simtest.Isolation())
	} else {
		// Every domain shares the host's loopback: take free ports.
		httpPort, echoPort = freePort(t), freePort(t)
	}
	m := simtest.New(t, opts...)
	m.Template("tpl")
	m.Install("tpl", filepath.Join(m.Bin, "qubes-claw-connect"), "/usr/bin/qubes-claw-connect", 0o755)
	// Client VMs run the tunnel too, from the same template.
	m.Install("tpl", filepath.Join(m.Bin, "qubes-claw-tunnel"), "/usr/bin/qubes-claw-tunnel", 0o755)
	m.Install(sim.Dom0, filepath.Join(m.Bin, "qubes-claw-tunnel"), "/usr/bin/qubes-claw-tunnel", 0o755)
	m.Symlink("tpl", "/usr/bin/qubes-claw-connect", "/etc/qubes-rpc/qubes-claw.Connect")
	m.WriteFile("tpl", "/etc/qubes-claw/qubes-claw-connect.yaml",
		[]byte(fmt.Sprintf("ports: [%d, %d]\nlog:\n  level: info\n", httpPort, echoPort)), 0o644)
	m.AppVM("agent", "tpl")
	m.Tag("agent", "openclaw-server")
	a := &agent{m: m, httpPort: httpPort, echoPort: echoPort}
	m.MustRun("qvm-start", "agent")
	a.serve(t)
	return a
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serve starts the helper servers in the agent VM and waits for them.
func (a *agent) serve(t testing.TB) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.m.Sim.Spawn("agent", sim.SpawnRequest{
		Argv: []string{exe, "-test.run=^TestHelperServer$"},
		Env:  []string{fmt.Sprintf("%s=%d:%d", helperEnv, a.httpPort, a.echoPort)},
		Tag:  "servers",
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Release()
	waitFor(t, "the servers in the agent VM", func() bool {
		return a.m.VM("agent", fmt.Sprintf("curl -s -m 2 http://127.0.0.1:%d/health", a.httpPort)).Stdout == "ok\n"
	})
}

// waitFor waits for cond, bounded (testwait.For).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 60*time.Second, what, cond)
}

// daemon is a qubes-claw-tunnel serve started in a domain.
type daemon struct {
	log  string // host path of its stderr
	proc *sim.Process
}

// startDaemon writes the config into domain and runs the daemon there.
func (a *agent) startDaemon(t testing.TB, domain, listenHTTP, listenEcho, extra string) *daemon {
	t.Helper()
	cfg := fmt.Sprintf(`tunnels:
  - {name: proxy, listen: "%s", vm: agent, port: %d}
  - {name: echo, listen: "%s", vm: agent, port: %d}
retry_interval: 200ms
%s`, listenHTTP, a.httpPort, listenEcho, a.echoPort, extra)
	a.m.WriteFile(domain, "/etc/qubes/qubes-claw-tunnel.yaml", []byte(cfg), 0o644)
	logPath := filepath.Join(t.TempDir(), domain+"-tunnel.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := a.m.Sim.Spawn(domain, sim.SpawnRequest{
		Argv: []string{"/usr/bin/qubes-claw-tunnel", "serve"}, Tag: "tunnel",
		Stdout: f, Stderr: f,
	})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: logPath, proc: p}
	t.Cleanup(func() {
		p.Signal(15)
		p.Wait()
	})
	return d
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// TestE2EDom0Curl: from dom0, curl reaches the HTTP server in the agent VM
// through the tunnel, while dom0 and the VM share no network path.
func TestE2EDom0Curl(t *testing.T) {
	a := newAgent(t, true)
	m := a.m
	url := "http://127.0.0.1:32125/health"
	if r := m.Dom0("curl -s -m 2 " + url); r.Code == 0 {
		t.Fatalf("dom0 reaches the VM's port without the tunnel: %v", r)
	}
	d := a.startDaemon(t, sim.Dom0, "127.0.0.1:32125", "127.0.0.1:18789", "")
	waitFor(t, "the tunnel", func() bool { return m.Dom0("curl -s -m 5 "+url).Stdout == "ok\n" })
	r := m.Dom0("qubes-claw-tunnel status")
	if r.Code != 0 || !strings.Contains(r.Stdout, "proxy") || !strings.Contains(r.Stdout, "reachable") {
		t.Errorf("status: %v", r)
	}
	if !strings.Contains(d.logText(), "connection closed") {
		t.Errorf("no per-connection log line:\n%s", d.logText())
	}
}

// TestE2EClientVM: a client VM tagged openclaw-client reaches the proxy
// through the tunnel binary with qrexec-client-vm; an untagged VM and a
// tagged VM asking for port 22 are denied by policy (126); the handler
// refuses port 22 even when called from dom0.
func TestE2EClientVM(t *testing.T) {
	a := newAgent(t, true)
	m := a.m
	// The policy file comes from the tunnel's own renderer.
	if r := m.Dom0("qubes-claw-tunnel policy render --write"); r.Code != 0 {
		t.Fatalf("policy render --write: %v", r)
	}
	m.AppVM("client", "tpl")
	m.Tag("client", "openclaw-client")
	m.AppVM("other", "tpl")
	m.MustRun("qvm-start", "client")
	m.MustRun("qvm-start", "other")
	d := a.startDaemon(t, "client", "127.0.0.1:32125", "127.0.0.1:18789", "")
	waitFor(t, "the client's tunnel", func() bool {
		return m.VM("client", "curl -s -m 5 http://127.0.0.1:32125/health").Stdout == "ok\n"
	})
	if !strings.Contains(d.logText(), "transport=vm") {
		t.Errorf("client daemon did not use qrexec-client-vm:\n%s", d.logText())
	}
	for _, tt := range []struct{ vm, call string }{
		{"other", "qubes-claw.Connect+32125"},
		{"client", "qubes-claw.Connect+22"},
		{"client", "qubes.VMShell"},
	} {
		r := m.VMInput(tt.vm, []byte("x"), "qrexec-client-vm agent "+tt.call)
		if r.Code != 126 {
			t.Errorf("%s: qrexec-client-vm agent %s: %v, want 126", tt.vm, tt.call, r)
		}
	}
	r := m.Run(simtest.Cmd{Argv: []string{"qrexec-client", "-d", "agent", "DEFAULT:QUBESRPC qubes-claw.Connect+22 dom0"}, Stdin: []byte("GET /\n")})
	if r.Code != 3 || !strings.Contains(r.Stderr, "not allowed") || r.Stdout != "" {
		t.Errorf("handler from dom0 for port 22: %v, want exit 3 with a log line", r)
	}
	// explain names the deciding file and line.
	r = m.Dom0("qubes-claw-tunnel policy explain other qubes-claw.Connect+32125 agent")
	if r.Code != 3 || !strings.Contains(r.Stdout, "50-qubes-claw.policy:") || !strings.Contains(r.Stdout, "result: deny") {
		t.Errorf("explain (untagged): %v", r)
	}
	r = m.Dom0("qubes-claw-tunnel policy explain client qubes-claw.Connect+32125 agent")
	if r.Code != 0 || !strings.Contains(r.Stdout, "result: allow, target agent") {
		t.Errorf("explain (tagged): %v", r)
	}
}

// stream is a deterministic pseudo-random byte source.
func stream(seed int64, n int64) io.Reader {
	return io.LimitReader(rand.New(rand.NewSource(seed)), n)
}

// TestE2EBulkAndHalfClose: 1 GiB each way at once through the tunnel,
// byte-exact; the client half-closes and still receives everything.
func TestE2EBulkAndHalfClose(t *testing.T) {
	a := newAgent(t, false)
	hp, ep := freePort(t), freePort(t)
	a.startDaemon(t, sim.Dom0, "127.0.0.1:"+strconv.Itoa(hp), "127.0.0.1:"+strconv.Itoa(ep), "")
	waitFor(t, "the tunnel", func() bool { return get(hp) == "ok\n" })
	size := int64(1 << 30)
	if testing.Short() {
		size = 1 << 20
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ep))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := sha256.New()
	go func() {
		io.Copy(io.MultiWriter(c, sent), stream(1, size))
		c.(*net.TCPConn).CloseWrite() // half-close: the echo still comes back
	}()
	got := sha256.New()
	n, err := io.CopyBuffer(got, c, make([]byte, 256<<10))
	if err != nil || n != size {
		t.Fatalf("received %d of %d bytes: %v", n, size, err)
	}
	if hex.EncodeToString(got.Sum(nil)) != hex.EncodeToString(sent.Sum(nil)) {
		t.Fatal("the data came back altered")
	}
}

func get(port int) string {
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/health")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestE2EVMHalts: the VM halts mid-stream: the connection ends, the daemon
// keeps running, the next connection is refused at once with a logged
// reason, and after the VM starts again connections work, with no restart.
func TestE2EVMHalts(t *testing.T) {
	a := newAgent(t, false)
	m := a.m
	hp, ep := freePort(t), freePort(t)
	d := a.startDaemon(t, sim.Dom0, "127.0.0.1:"+strconv.Itoa(hp), "127.0.0.1:"+strconv.Itoa(ep), "")
	waitFor(t, "the tunnel", func() bool { return get(hp) == "ok\n" })
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(ep))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	m.MustRun("qvm-shutdown", "--wait", "agent")
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the connection did not end when the VM halted: %v", err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s\nstatus: %v", d.logText(), m.Host("qubes-claw-tunnel", "status"))
		}
	}()
	waitFor(t, "the daemon to mark the VM unreachable", func() bool {
		return strings.Contains(m.Host("qubes-claw-tunnel", "status").Stdout, "unreachable")
	})
	if r := m.Host("qubes-claw-tunnel", "status"); r.Code != 0 {
		t.Fatalf("the daemon is gone: %v", r)
	}
	if got := get(hp); got != "" {
		t.Fatalf("answer %q while the VM is halted", got)
	}
	waitFor(t, "a refusal with its reason in the log", func() bool {
		s := d.logText()
		return strings.Contains(s, "connection refused") && strings.Contains(s, "vm agent unreachable")
	})
	if m.Running("agent") {
		t.Fatal("the tunnel started the halted VM")
	}
	m.MustRun("qvm-start", "agent")
	a.serve(t)
	waitFor(t, "service to resume", func() bool { return get(hp) == "ok\n" })
}

// TestE2EBinaryNonLoopback: the binary refuses a non-loopback listen address
// without the key, with the configuration exit status.
func TestE2EBinaryNonLoopback(t *testing.T) {
	m := simtest.New(t)
	m.WriteFile(sim.Dom0, "/etc/qubes/qubes-claw-tunnel.yaml",
		[]byte("tunnels:\n  - {name: x, listen: \"0.0.0.0:32125\", vm: agent, port: 32125}\n"), 0o644)
	r := m.Host("qubes-claw-tunnel", "serve")
	if r.Code != 78 || !strings.Contains(r.Stderr, "allow_non_loopback") {
		t.Fatalf("serve with 0.0.0.0: %v, want exit 78 naming allow_non_loopback", r)
	}
}
