package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
	"github.com/qubes-claw/qubes-claw/pkg/vmsetup"
)

// TestRebootTunnelsE2E: install, `qubes-sim reboot`: the agent VM runs, the
// tunnels answer from dom0, a chat completion reaches the stand-in provider
// through them, qvm-remote-dom0 runs only where it was enabled persistently,
// and the policy explain shows the planned decisions. Isolation mode (root)
// uses the default ports and separate network namespaces; without it,
// every domain shares the host's loopback and free ports are used.
func TestRebootTunnelsE2E(t *testing.T) {
	for _, isolation := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolation=%v", isolation), func(t *testing.T) {
			var opts []simtest.Option
			p := newPorts(t)
			if isolation {
				simtest.SkipUnlessIsolation(t)
				opts = append(opts, simtest.Isolation())
				p = ports{32125, 18789, 32125, 18789, 8080}
			}
			m := newMachine(t, opts...)
			answers := p.answers()
			if isolation {
				// dom0's and the VM's loopbacks are separate: the same ports.
				answers = strings.Replace(answers, fmt.Sprintf("  listen: [\"127.0.0.1:%d\", \"127.0.0.1:%d\"]\n", p.tproxy, p.tgateway), "", 1)
			}
			writeAnswers(m, answers)
			mustInstall(t, m, "--config", answersPath)
			m.MustRun("qubes-sim", "reboot", m.Dir)
			if !m.Running("claw-agent") {
				t.Fatal("the agent VM (autostart) is not running after reboot")
			}
			if m.Dom0("systemctl is-active qvm-remote-dom0.service").Code == 0 {
				t.Error("qvm-remote-dom0 runs without the persistent enable")
			}
			// The provider stand-in runs in the agent VM (in isolation mode no
			// VM reaches the host), on the port the answers' base_url names.
			proc, err := m.Sim.Spawn("claw-agent", sim.SpawnRequest{
				Argv: []string{"/usr/bin/qubes-claw-standin", "--listen", fmt.Sprintf("127.0.0.1:%d", p.provider)}, Tag: "standin"})
			if err != nil {
				t.Fatal(err)
			}
			proc.Release()

			health := fmt.Sprintf("curl -sf -m 5 http://127.0.0.1:%d/health", p.tproxy)
			r := waitOK(t, m, health)
			if !strings.Contains(r.Stdout, `"provider":"openai"`) {
				t.Errorf("health through the tunnel: %v", r)
			}
			conf := m.VM("claw-agent", "cat ~/.config/qubes-claw/qubes-claw-proxy.yaml")
			token := vmsetup.GetYAML([]byte(conf.Stdout), "token")
			if token == "" {
				t.Fatalf("no client token in the VM's proxy config: %v", conf)
			}
			chat := waitOK(t, m, fmt.Sprintf(`curl -sf -m 10 -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' `+
				`-d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' http://127.0.0.1:%d/v1/chat/completions`, token, p.tproxy))
			if !strings.Contains(chat.Stdout, `"content":"Hello, world"`) {
				t.Errorf("chat completion through the tunnel: %v", chat)
			}
			// The gateway's tunnel reaches the OpenClaw stand-in (any HTTP answer).
			if r := m.Dom0(fmt.Sprintf("curl -s -m 5 -o /dev/null -w %%{http_code} http://127.0.0.1:%d/", p.tgateway)); r.Stdout == "000" || r.Stdout == "" {
				t.Errorf("gateway tunnel: %v", r)
			}

			// The decisions of the installed policy, as qrexec would take them.
			for _, c := range []struct {
				src, arg string
				code     int
				why      string
			}{
				{"work", fmt.Sprint(p.proxy), 0, "40-qubes-claw-install.policy"},
				{"work", "22", 3, "40-qubes-claw-install.policy"},
				{"claw-admin", fmt.Sprint(p.proxy), 3, "40-qubes-claw-install.policy"},
			} {
				r := m.Dom0(fmt.Sprintf("qubes-claw-tunnel policy explain %s qubes-claw.Connect+%s claw-agent", c.src, c.arg))
				if r.Code != c.code || !strings.Contains(r.Stdout+r.Stderr, c.why) {
					t.Errorf("explain %s +%s: want exit %d from %s, got %v", c.src, c.arg, c.code, c.why, r)
				}
			}
			// A second run after the reboot changes nothing.
			again := mustInstall(t, m, "--config", answersPath)
			contains(t, "run after reboot", again, "nothing to change: every step is unchanged")
		})
	}
}

// waitOK runs a dom0 command until it succeeds: after a boot the units
// come up in the background. The deadline only turns a hang into a failure.
func waitOK(t *testing.T, m *simtest.Machine, cmd string) simtest.Result {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := m.Dom0(cmd)
		if r.Code == 0 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", cmd, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
