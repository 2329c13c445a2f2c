package vmsetup_test

import (
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/standin"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
	"github.com/qubes-claw/qubes-claw/pkg/vmsetup"
)

func TestMain(m *testing.M) { simtest.Main(m) }

// freePort returns a loopback port nobody listens on now: without
// isolation mode the simulated VMs share the host's network.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// fakeOpenclaw stands in for the OpenClaw CLI: `openclaw gateway --port N
// ...` serves HTTP on N (the stand-in provider answers every GET with 404,
// which watch-gateway counts as alive).
const fakeOpenclaw = `#!/bin/sh
[ "$1" = gateway ] && [ "$2" = --port ] || exit 64
exec qubes-claw-standin --listen "127.0.0.1:$3"
`

type agentVM struct {
	name, class string
	flags       bool
	proxy, gw   int
}

func unitRunning(t *testing.T, m *simtest.Machine, vm, unit string) bool {
	t.Helper()
	ps, err := m.Sim.Processes(vm)
	if err != nil {
		t.Fatalf("processes of %s: %v", vm, err)
	}
	for _, p := range ps {
		if p.Tag == "unit:user@"+unit {
			return true
		}
	}
	return false
}

func waitHealth(t *testing.T, m *simtest.Machine, vm string, port int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := m.VM(vm, fmt.Sprintf("curl -sf http://127.0.0.1:%d/health", port))
		if r.Code == 0 {
			return r.Stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: proxy /health never answered: %v", vm, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSetupSurvivesRebootE2E: the proxy installed in a StandaloneVM and in
// an AppVM (through its template), set up with `qvm-run -u root ... setup`,
// answers /health after `qubes-sim reboot` and carries a chat completion to
// the stand-in provider; in a VM whose service flags are off, the units do
// not start.
func TestSetupSurvivesRebootE2E(t *testing.T) {
	m := simtest.New(t)
	up := standin.New()
	upstream := httptest.NewServer(up)
	defer upstream.Close()

	m.Template("tpl")
	vms := []agentVM{
		{name: "solo", class: "StandaloneVM", flags: true},
		{name: "agent", class: "AppVM", flags: true},
		{name: "quiet", class: "StandaloneVM"},
		{name: "quietapp", class: "AppVM"},
	}
	install := func(domain string) {
		m.Install(domain, filepath.Join(m.Bin, "qubes-claw-proxy"), "/usr/bin/qubes-claw-proxy", 0o755)
		m.Install(domain, filepath.Join(m.Bin, "qubes-claw-standin"), "/usr/bin/qubes-claw-standin", 0o755)
		m.WriteFile(domain, "/usr/bin/openclaw", []byte(fakeOpenclaw), 0o755)
	}
	install("tpl")
	for i := range vms {
		vm := &vms[i]
		vm.proxy, vm.gw = freePort(t), freePort(t)
		if vm.class == "AppVM" {
			m.AppVM(vm.name, "tpl")
		} else {
			m.CreateVM(vm.name, "--class", "StandaloneVM")
			install(vm.name)
		}
		m.MustRun("qvm-prefs", vm.name, "autostart", "True")
		if vm.flags {
			m.MustRun("qvm-service", "--enable", vm.name, vmsetup.ProxyService)
			m.MustRun("qvm-service", "--enable", vm.name, vmsetup.GatewayService)
		}
		// Flags are read at boot: qvm-run starts the VM after they are set.
		cmd := fmt.Sprintf("QCPROXY_SETUP_GATEWAY_PORT=%d QCPROXY_SETUP_GATEWAY_HEALTH=http://127.0.0.1:%d/ "+
			"qubes-claw-proxy setup --provider openai --api-key-stdin --base-url %s/openai/v1 --listen 127.0.0.1:%d",
			vm.gw, vm.gw, upstream.URL, vm.proxy)
		r := m.Run(simtest.Cmd{Argv: []string{"qvm-run", "-u", "root", "--pass-io", vm.name, cmd}, Stdin: []byte("sk-standin-key-0123\n")})
		if r.Code != 0 {
			t.Fatalf("%s: setup: %v", vm.name, r)
		}
		if vm.flags {
			waitHealth(t, m, vm.name, vm.proxy)
		}
		// Idempotent: the second run writes nothing.
		r = m.Run(simtest.Cmd{Argv: []string{"qvm-run", "-u", "root", "--pass-io", vm.name,
			fmt.Sprintf("QCPROXY_SETUP_GATEWAY_PORT=%d QCPROXY_SETUP_GATEWAY_HEALTH=http://127.0.0.1:%d/ qubes-claw-proxy setup --no-start", vm.gw, vm.gw)}})
		if r.Code != 0 || strings.Contains(r.Stdout, "wrote") {
			t.Errorf("%s: second setup: %v", vm.name, r)
		}
	}
	// An AppVM loses /var (and so linger) at shutdown: only the boot hook
	// setup wrote in /rw/config/rc.local.d brings the user manager back
	// (the simulator runs those hooks at every VM boot, as qubes-misc-post).
	for _, vm := range []string{"agent", "quietapp"} {
		if _, err := os.Stat(m.Sim.Path(vm, "/rw/config/rc.local.d/"+vmsetup.LingerHookName)); err != nil {
			t.Fatalf("%s (AppVM): linger boot hook: %v", vm, err)
		}
	}

	m.MustRun("qubes-sim", "reboot", m.Dir)

	for _, vm := range vms {
		t.Run(vm.name, func(t *testing.T) {
			if !vm.flags {
				for _, u := range vmsetup.Units {
					if unitRunning(t, m, vm.name, u) {
						t.Errorf("%s runs with its Qubes service flag off", u)
					}
				}
				return
			}
			health := waitHealth(t, m, vm.name, vm.proxy)
			if !strings.Contains(health, `"status":"healthy"`) || !strings.Contains(health, `"provider":"openai"`) {
				t.Errorf("health %s", health)
			}
			deadline := time.Now().Add(60 * time.Second)
			for !unitRunning(t, m, vm.name, vmsetup.GatewayUnit) {
				if time.Now().After(deadline) {
					t.Fatal("gateway unit not running after reboot")
				}
				time.Sleep(200 * time.Millisecond)
			}
			conf, err := os.ReadFile(m.Sim.Path(vm.name, "/home/user/.config/qubes-claw/qubes-claw-proxy.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			token := vmsetup.GetYAML(conf, "token")
			before := up.Hits("openai")
			r := m.VM(vm.name, fmt.Sprintf(`curl -sf -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' `+
				`-d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' http://127.0.0.1:%d/v1/chat/completions`, token, vm.proxy))
			if r.Code != 0 || !strings.Contains(r.Stdout, `"content":"Hello, world"`) {
				t.Errorf("chat completion: %v", r)
			}
			if up.Hits("openai") != before+1 {
				t.Errorf("the stand-in provider got %d requests, want 1", up.Hits("openai")-before)
			}
		})
	}
}
