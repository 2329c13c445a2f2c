package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// python is Debian's interpreter with python3-jinja2 and python3-yaml
// (.ci/deps), the libraries Salt itself renders with.
const python = "/usr/bin/python3"

var saltRoot = filepath.Join(repoRoot, "salt")

type rendered struct {
	SLS    []string `json:"sls"`
	States []struct {
		ID    string         `json:"id"`
		State string         `json:"state"`
		Fun   string         `json:"fun"`
		Args  map[string]any `json:"args"`
	} `json:"states"`
}

func renderSalt(t *testing.T, roots, pillar string, args ...string) (rendered, string, error) {
	t.Helper()
	if err := exec.Command(python, "-c", "import jinja2, yaml").Run(); err != nil {
		t.Skipf("python3-jinja2/python3-yaml missing (make deps): %v", err)
	}
	argv := []string{"testdata/saltrender.py", "--roots", roots, "--id", "dom0"}
	if pillar != "" {
		p := filepath.Join(t.TempDir(), "pillar.yaml")
		os.WriteFile(p, []byte(pillar), 0o644)
		argv = append(argv, "--pillar", p)
	}
	cmd := exec.Command(python, append(argv, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r rendered
	if err == nil {
		err = json.Unmarshal(out, &r)
	}
	return r, stderr.String(), err
}

// custom are answers unlike the defaults: an AppVM agent without network,
// one port, qvm-remote-dom0 accepted at boot.
func (p ports) custom() string {
	return fmt.Sprintf(`agent:
  name: my-agent
  class: AppVM
  template: fedora
  label: blue
  netvm: none
  autostart: false
clients:
  vms: [work]
ports: [%d]
tunnel:
  listen: ["127.0.0.1:%d"]
setup:
  provider: openai
  base_url: http://127.0.0.1:%d/openai/v1
  api_key_file: %s
remote:
  persistent_enable: "yes"
`, p.proxy, p.tproxy, p.provider, keyPath)
}

// pillarOf is the pillar for answers: the same settings under
// "qubes-claw", the key itself instead of the dom0 file naming it.
func pillarOf(answers string) string {
	a := strings.Replace(answers, "api_key_file: "+keyPath, fmt.Sprintf("api_key: %q", providerKey), 1)
	return "qubes-claw:\n" + indent(a)
}

// TestSaltRenders: the top file and every .sls render like Salt's renderer
// for the default and a custom pillar, and pass the structural and qvm.*
// argument checks; seeded defects are caught.
func TestSaltRenders(t *testing.T) {
	p := ports{32125, 18789, 32125, 18789, 8080}
	for name, pillar := range map[string]string{"defaults": "", "custom": pillarOf(p.custom())} {
		for _, id := range []string{"dom0", "claw-agent", "my-agent", "fedora"} {
			t.Run(name+" "+id, func(t *testing.T) {
				r, stderr, err := renderSalt(t, saltRoot, pillar, "--id", id, "top", "qubes-claw.top")
				if err != nil {
					t.Fatalf("render: %v\n%s", err, stderr)
				}
				want := map[string]string{"dom0": "[qubes-claw]", "claw-agent": "[]", "my-agent": "[]", "fedora": "[]"}
				if name == "defaults" {
					want["claw-agent"] = "[qubes-claw.vm]"
				} else {
					want["my-agent"], want["fedora"] = "[qubes-claw.vm]", "[qubes-claw.template]"
				}
				if got := fmt.Sprint(r.SLS); got != want[id] || (len(r.SLS) > 0 && len(r.States) == 0) {
					t.Fatalf("top selected %v with %d states, want %s", got, len(r.States), want[id])
				}
			})
		}
	}
	for _, seed := range []struct{ from, to, want string }{
		{"      - memory:", "      - memory_mb:", "does not accept 'memory_mb'"},
		{"      - label: {{ r.label }}\n      - netvm: ''", "      - label: pink\n      - netvm: ''", "label 'pink'"},
		{"      - qvm: qubes-claw-admin-vm", "      - qvm: no-such-state", "matches no state"},
		{"    - mode: '0664'", "    - mode: 0664", "must be a quoted string"},
		{"qubes-claw-policy:", "qubes-claw-agent:", "found conflicting ID"},
		{"{{ a.name }}", "{{ a.no_such_key }}", "UndefinedError"},
	} {
		t.Run("seeded "+seed.want, func(t *testing.T) {
			dir := t.TempDir()
			copyTree(t, saltRoot, dir)
			p := filepath.Join(dir, "qubes-claw", "init.sls")
			b, _ := os.ReadFile(p)
			if !strings.Contains(string(b), seed.from) {
				t.Fatalf("seed %q not in init.sls", seed.from)
			}
			os.WriteFile(p, []byte(strings.Replace(string(b), seed.from, seed.to, 1)), 0o644)
			_, stderr, err := renderSalt(t, dir, "qubes-claw:\n  agent:\n    template: fedora\n", "sls", "qubes-claw")
			if err == nil || !strings.Contains(stderr, seed.want) {
				t.Fatalf("defect not caught (err %v): %s", err, stderr)
			}
		})
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-r", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
}

// TestSaltMatchesInstaller: the rendered states applied to a fresh
// simulator leave it identical to what the installer makes of the same
// answers.
func TestSaltMatchesInstaller(t *testing.T) {
	for _, tc := range []struct {
		name   string
		agent  string
		answer func(ports) string
	}{
		{"defaults", "claw-agent", ports.answers},
		{"custom", "my-agent", ports.custom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers := tc.answer(newPorts(t))
			pillar := pillarOf(answers)
			// qubesctl's order: dom0, then templates, then the other VMs.
			var states []rendered
			for _, id := range []string{"dom0", "fedora", tc.agent} {
				r, stderr, err := renderSalt(t, saltRoot, pillar, "--id", id, "top", "qubes-claw.top")
				if err != nil {
					t.Fatalf("render for %s: %v\n%s", id, err, stderr)
				}
				states = append(states, r)
			}
			byInstaller := newMachine(t)
			writeAnswers(byInstaller, answers)
			mustInstall(t, byInstaller, "--config", answersPath)
			a, aEnabled := snapshot(t, byInstaller), enabled(byInstaller)
			// Both machines use the same loopback ports outside isolation.
			byInstaller.Shutdown()

			bySalt := newMachine(t)
			writeAnswers(bySalt, answers) // the same files on both machines
			for i, id := range []string{sim.Dom0, "fedora", tc.agent} {
				applySalt(t, bySalt, id, states[i])
			}
			b := snapshot(t, bySalt)
			if a != b {
				t.Fatalf("Salt's end state differs from the installer's (- installer, + salt):\n%s", diffLines(a, b))
			}
			if aEnabled != enabled(bySalt) {
				t.Fatalf("qvm-remote-dom0 enabled: installer %v, salt %v", aEnabled, enabled(bySalt))
			}
		})
	}
}

func indent(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, "  "+l)
	}
	return strings.Join(out, "\n") + "\n"
}

func indentOut(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, strings.TrimPrefix(l, "  "))
	}
	return strings.Join(out, "\n") + "\n"
}

// applySalt is the test applier: it does what Salt's states do, in order,
// through the simulated tools — qvm.vm's actions (present creates only a
// missing VM; prefs, features and tags compare values first, as the real
// module does), file.managed, cmd.run with unless, service.running.
func applySalt(t *testing.T, m *simtest.Machine, target string, r rendered) {
	t.Helper()
	changed := map[string]bool{} // state IDs that changed something (for watch)
	inVM := func(cmd string, stdin []byte) simtest.Result {
		return m.Run(simtest.Cmd{Argv: []string{"qvm-run", "-u", "root", "--pass-io", target, cmd}, Stdin: stdin})
	}
	for _, s := range r.States {
		name := fmt.Sprint(s.Args["name"])
		switch s.State + "." + s.Fun {
		case "qvm.vm":
			for _, a := range s.Args["actions"].([]any) {
				applyQvm(t, m, name, a.(string), kwargs(s.Args[a.(string)]))
			}
		case "qvm.tags":
			applyQvm(t, m, name, "tags", s.Args)
		case "file.managed":
			data := []byte(s.Args["contents"].(string))
			if old, err := os.ReadFile(m.Sim.Path(target, name)); err == nil && string(old) == string(data) {
				continue
			}
			if err := os.MkdirAll(m.Sim.Path(target, filepath.Dir(name)), 0o755); err != nil {
				t.Fatal(err)
			}
			m.WriteFile(target, name, data, parseMode(t, s.Args["mode"].(string)))
			changed[s.ID] = true
		case "cmd.run":
			var stdin []byte
			if in, ok := s.Args["stdin"]; ok {
				stdin = []byte(in.(string))
			}
			run := func(cmd string) simtest.Result { return m.Dom0(cmd) }
			if target != sim.Dom0 {
				run = func(cmd string) simtest.Result { return inVM(cmd, stdin) }
			}
			if u, ok := s.Args["unless"]; ok && run(u.(string)).Code == 0 {
				continue
			}
			if res := run(name); res.Code != 0 {
				t.Fatalf("state %s: %v", s.ID, res)
			}
		case "service.running":
			if s.Args["enable"] == true {
				if res := m.Dom0("systemctl enable --now " + name); res.Code != 0 {
					t.Fatalf("state %s: %v", s.ID, res)
				}
			}
			for _, w := range listOf(s.Args["watch"]) {
				for _, id := range w.(map[string]any) {
					if changed[id.(string)] {
						m.Dom0("systemctl restart " + name)
					}
				}
			}
		case "pkg.installed":
			// The machine has the package (newMachine): check its handler.
			if _, err := os.Lstat(m.Sim.Path(target, "/etc/qubes-rpc/qubes-claw.Connect")); err != nil {
				t.Fatalf("state %s: %s is not installed in %s: %v", s.ID, name, target, err)
			}
		default:
			t.Fatalf("the test applier does not know %s.%s", s.State, s.Fun)
		}
	}
}

func listOf(v any) []any {
	l, _ := v.([]any)
	return l
}

func kwargs(v any) map[string]any {
	out := map[string]any{}
	for _, item := range v.([]any) {
		for k, x := range item.(map[string]any) {
			out[k] = x
		}
	}
	return out
}

func parseMode(t *testing.T, s string) os.FileMode {
	var m uint32
	if _, err := fmt.Sscanf(s, "%o", &m); err != nil {
		t.Fatal(err)
	}
	return os.FileMode(m)
}

// saltValue is how the qvm module passes a YAML value to qvm-prefs.
func saltValue(v any) string {
	switch x := v.(type) {
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return fmt.Sprint(int64(x))
	}
	return fmt.Sprint(v)
}

func applyQvm(t *testing.T, m *simtest.Machine, vm, action string, kw map[string]any) {
	t.Helper()
	switch action {
	case "present":
		if m.Host("qvm-check", "-q", vm).Code == 0 {
			return // [SKIP] already exists: nothing is updated
		}
		argv := []string{"qvm-create", "--class", kw["class"].(string), "--label", kw["label"].(string)}
		if tpl, ok := kw["template"]; ok {
			argv = append(argv, "--template", tpl.(string))
		}
		m.MustRun(append(argv, vm)...)
	case "prefs":
		for k, v := range kw {
			cur := strings.TrimSpace(m.MustRun("qvm-prefs", vm, k).Stdout)
			if !strings.EqualFold(cur, saltValue(v)) {
				m.MustRun("qvm-prefs", vm, k, saltValue(v))
			}
		}
	case "tags":
		for _, tag := range kw["add"].([]any) {
			if m.Host("qvm-tags", vm, "list", tag.(string)).Code != 0 {
				m.MustRun("qvm-tags", vm, "add", tag.(string))
			}
		}
	case "features":
		for _, item := range kw["set"].([]any) {
			for k, v := range item.(map[string]any) {
				if r := m.Host("qvm-features", vm, k); r.Code != 0 || strings.TrimSpace(r.Stdout) != v.(string) {
					m.MustRun("qvm-features", vm, k, v.(string))
				}
			}
		}
	case "service":
		for _, svc := range kw["enable"].([]any) {
			m.MustRun("qvm-service", "--enable", vm, svc.(string))
		}
	default:
		t.Fatalf("the test applier does not know qvm.vm action %s", action)
	}
}
