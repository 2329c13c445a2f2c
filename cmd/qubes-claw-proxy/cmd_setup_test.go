package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
)

// fakeTools records tool calls; loginctl show-user succeeds once linger
// was enabled, as logind answers for a lingering user.
type fakeTools struct {
	mu      sync.Mutex
	calls   []string
	lingers bool
}

func (f *fakeTools) run(_ context.Context, argv ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	line := strings.Join(argv, " ")
	f.calls = append(f.calls, line)
	switch {
	case strings.HasPrefix(line, "loginctl show-user"):
		if !f.lingers {
			return "", &toolError{Argv: argv, Err: errors.New("exit status 1"), Stderr: "User ID 1000 is not logged in or lingering"}
		}
		return "lingering\n", nil
	case strings.HasPrefix(line, "loginctl enable-linger"):
		f.lingers = true
	}
	return "", nil
}

func (f *fakeTools) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// vmRoot makes a VM root of the given persistence class with the user's home
// and relocates every configured path into it.
func vmRoot(t *testing.T, persistence string, flags ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"home/user", "root", "run/qubes", "run/qubes-service", "rw/config/rc.local.d", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "run/qubes/persistent-"+persistence), nil, 0o644)
	for _, f := range flags {
		os.WriteFile(filepath.Join(root, "run/qubes-service", f), nil, 0o644)
	}
	t.Setenv(config.RootEnv, root)
	t.Setenv("HOME", filepath.Join(root, "root"))
	t.Setenv("TMPDIR", filepath.Join(root, "tmp"))
	t.Setenv("USER", "root")
	for _, k := range []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CURSOR_API_KEY", "QCPROXY_CONFIG"} {
		t.Setenv(k, "")
	}
	return root
}

func runWith(t *testing.T, tools *fakeTools, stdin string, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Run(newRootCmdWith(tools.run), args, cli.Stdio{In: strings.NewReader(stdin), Out: &out, Err: &out})
	return code, out.String()
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSetupAppVM(t *testing.T) {
	root := vmRoot(t, "rw-only", "qubes-claw-proxy")
	tools := &fakeTools{}
	code, out := runWith(t, tools, "sk-ant-secret-0123456789\n", "setup", "--provider", "anthropic", "--api-key-stdin")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	home := filepath.Join(root, "home/user")
	conf := read(t, filepath.Join(home, ".config/qubes-claw/qubes-claw-proxy.yaml"))
	if !strings.Contains(conf, "provider: anthropic\n") || !strings.Contains(conf, "api_key: sk-ant-secret-0123456789\n") || !strings.Contains(conf, "token: qcp-") {
		t.Errorf("proxy config:\n%s", conf)
	}
	if fi, _ := os.Stat(filepath.Join(home, ".config/qubes-claw/qubes-claw-proxy.yaml")); fi.Mode().Perm() != 0o600 {
		t.Errorf("proxy config mode %v: it holds the key", fi.Mode())
	}
	oc := read(t, filepath.Join(home, ".openclaw/openclaw.json"))
	if strings.Contains(oc, "sk-ant-secret") || !strings.Contains(oc, `"primary": "qubes/claude-sonnet-4"`) {
		t.Errorf("openclaw.json:\n%s", oc)
	}
	for _, u := range []string{"qubes-claw-proxy.service", "qubes-claw-gateway.service"} {
		if target, err := os.Readlink(filepath.Join(home, ".config/systemd/user/default.target.wants", u)); err != nil || target != "../"+u {
			t.Errorf("%s not enabled: %q, %v", u, target, err)
		}
		if !strings.Contains(read(t, filepath.Join(home, ".config/systemd/user", u)), "ConditionPathExists=/run/qubes-service/") {
			t.Errorf("%s not gated", u)
		}
	}
	hook := filepath.Join(root, "rw/config/rc.local.d/50-qubes-claw-linger.rc")
	if !strings.Contains(read(t, hook), "loginctl enable-linger user") {
		t.Error("AppVM linger hook missing")
	}
	if fi, _ := os.Stat(hook); fi.Mode().Perm()&0o100 == 0 {
		t.Error("hook not executable")
	}
	// The manager was not up: enable-linger starts it with the units.
	want := []string{"loginctl show-user user --property=State --value", "loginctl enable-linger user"}
	if got := tools.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tools:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(out, "qvm-service --enable VM qubes-claw-gateway") || strings.Contains(out, "--enable VM qubes-claw-proxy,") {
		t.Errorf("flag notes:\n%s", out)
	}

	// Idempotent: a second run changes no file and only starts the units
	// in the running manager.
	token := read(t, filepath.Join(home, ".config/qubes-claw/qubes-claw-proxy.yaml"))
	code, out = runWith(t, tools, "", "setup")
	if code != 0 || strings.Contains(out, "wrote") || strings.Contains(out, "\nenabled ") {
		t.Fatalf("second run: exit %d:\n%s", code, out)
	}
	if read(t, filepath.Join(home, ".config/qubes-claw/qubes-claw-proxy.yaml")) != token {
		t.Error("second run rewrote the proxy config")
	}
	got := strings.Join(tools.take(), "\n")
	if !strings.Contains(got, "systemctl --user --machine=user@ daemon-reload") ||
		!strings.Contains(got, "systemctl --user --machine=user@ start qubes-claw-proxy.service qubes-claw-gateway.service") {
		t.Errorf("second run tools:\n%s", got)
	}

	// Switching provider keeps the anthropic key and the token, and restarts.
	code, out = runWith(t, tools, "", "setup", "--provider", "ollama")
	if code != 0 {
		t.Fatalf("switch: exit %d:\n%s", code, out)
	}
	conf = read(t, filepath.Join(home, ".config/qubes-claw/qubes-claw-proxy.yaml"))
	if !strings.Contains(conf, "provider: ollama\n") || !strings.Contains(conf, "sk-ant-secret-0123456789") {
		t.Errorf("after switch:\n%s", conf)
	}
	if got := strings.Join(tools.take(), "\n"); !strings.Contains(got, " restart qubes-claw-proxy.service") {
		t.Errorf("switch did not restart:\n%s", got)
	}
}

func TestSetupStandaloneKeepsLingerOnly(t *testing.T) {
	root := vmRoot(t, "full", "qubes-claw-proxy", "qubes-claw-gateway")
	tools := &fakeTools{}
	if code, out := runWith(t, tools, "", "setup", "--provider", "ollama"); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(root, "rw/config/rc.local.d/50-qubes-claw-linger.rc")); err == nil {
		t.Error("a StandaloneVM keeps /var: no boot hook wanted")
	}
	if got := strings.Join(tools.take(), "\n"); !strings.Contains(got, "loginctl enable-linger user") {
		t.Errorf("tools:\n%s", got)
	}
}

func TestSetupRefusesMissingKey(t *testing.T) {
	root := vmRoot(t, "full")
	tools := &fakeTools{}
	code, out := runWith(t, tools, "", "setup", "--provider", "openai")
	if code != exitConfig || !strings.Contains(out, "openai.api_key") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(root, "home/user/.config/qubes-claw/qubes-claw-proxy.yaml")); err == nil {
		t.Error("wrote a config that cannot serve")
	}
	if calls := tools.take(); len(calls) != 0 {
		t.Errorf("ran tools after a config error: %v", calls)
	}
}

func TestSetupKeepsEditedOpenclaw(t *testing.T) {
	root := vmRoot(t, "rw-only")
	tools := &fakeTools{}
	if code, out := runWith(t, tools, "", "setup", "--provider", "ollama"); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	oc := filepath.Join(root, "home/user/.openclaw/openclaw.json")
	edited := strings.Replace(read(t, oc), `"bind": "loopback"`, `"bind": "lan"`, 1)
	os.WriteFile(oc, []byte(edited), 0o600)
	os.Remove(filepath.Join(root, "rw/config/rc.local.d/50-qubes-claw-linger.rc"))
	code, out := runWith(t, tools, "", "setup", "--provider", "cursor")
	if code != exitEdited && code != exitConfig {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out = runWith(t, tools, "", "setup", "--provider", "ollama")
	if code != exitEdited || !strings.Contains(out, "--force") {
		t.Fatalf("exit %d, want %d:\n%s", code, exitEdited, out)
	}
	if read(t, oc) != edited {
		t.Error("edited openclaw.json replaced without --force")
	}
	if _, err := os.Stat(filepath.Join(root, "rw/config/rc.local.d/50-qubes-claw-linger.rc")); err != nil {
		t.Error("the rest of setup must still run when openclaw.json is kept")
	}
}

// TestSetupCheck: --check writes nothing and runs no tool; it says "would"
// for each difference and nothing to change once setup has run (linger
// included), and notices a unit edited afterwards.
func TestSetupCheck(t *testing.T) {
	root := vmRoot(t, "rw-only", "qubes-claw-proxy")
	tools := &fakeTools{}
	key := "sk-ant-secret-0123456789\n"
	args := []string{"setup", "--provider", "anthropic", "--api-key-stdin"}
	home := filepath.Join(root, "home/user")
	code, out := runWith(t, tools, key, append(args, "--check")...)
	if code != 0 || !strings.Contains(out, "would write "+filepath.Join(home, ".config/qubes-claw/qubes-claw-proxy.yaml")) ||
		!strings.Contains(out, "would enable qubes-claw-proxy.service") || !strings.Contains(out, "would enable linger for user") {
		t.Fatalf("check on a fresh VM: exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(home, ".config")); !os.IsNotExist(err) {
		t.Fatalf("--check wrote into the home: %v", err)
	}
	if got := tools.take(); len(got) != 0 {
		t.Fatalf("--check ran tools: %q", got)
	}
	if code, out := runWith(t, tools, key, args...); code != 0 {
		t.Fatalf("setup: exit %d:\n%s", code, out)
	}
	// What logind does for enable-linger (the fake only records the call).
	os.MkdirAll(filepath.Join(root, "var/lib/systemd/linger"), 0o755)
	os.WriteFile(filepath.Join(root, "var/lib/systemd/linger/user"), nil, 0o644)
	tools.take()
	code, out = runWith(t, tools, key, append(args, "--check")...)
	if code != 0 || strings.Contains(out, "would") || !strings.Contains(out, "setup: nothing to change") {
		t.Fatalf("check after setup: exit %d:\n%s", code, out)
	}
	// A different key is a change to the user's config.
	if _, out = runWith(t, tools, "sk-ant-other-0123456789\n", append(args, "--check")...); !strings.Contains(out, "would write "+filepath.Join(home, ".config/qubes-claw/qubes-claw-proxy.yaml")) {
		t.Errorf("check with another key:\n%s", out)
	}
	unit := filepath.Join(home, ".config/systemd/user/qubes-claw-proxy.service")
	os.WriteFile(unit, []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
	code, out = runWith(t, tools, key, append(args, "--check")...)
	if code != 0 || !strings.Contains(out, "would write "+unit) || read(t, unit) != "[Service]\nExecStart=/bin/true\n" {
		t.Errorf("check after an edit: exit %d:\n%s", code, out)
	}
}
