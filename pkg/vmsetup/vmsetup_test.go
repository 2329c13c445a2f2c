package vmsetup

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the shipped unit files from the renderer")

// TestShippedUnits: the unit files the package ships are the default
// rendering, so setup's units and the packaged ones cannot drift apart.
func TestShippedUnits(t *testing.T) {
	o := UnitOptionsOf(Defaults())
	for name, text := range map[string][]byte{ProxyUnit: ProxyUnitText(o), GatewayUnit: GatewayUnitText(o)} {
		path := filepath.Join("..", "..", "configs", "systemd", name)
		if *update {
			if err := os.WriteFile(path, text, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./pkg/vmsetup -update writes it)", err)
		}
		if string(want) != string(text) {
			t.Errorf("%s differs from the rendering; run go test ./pkg/vmsetup -update\n--- rendered\n%s", path, text)
		}
	}
}

func TestUnitText(t *testing.T) {
	o := UnitOptions{Binary: "/opt/claw bin/proxy", Gateway: "/home/user/.npm-global/bin/openclaw", GatewayPort: 18800, GatewayHealth: "http://127.0.0.1:18800/"}
	proxy := string(ProxyUnitText(o))
	for _, want := range []string{
		"ConditionPathExists=/run/qubes-service/qubes-claw-proxy\n",
		`ExecStart="/opt/claw bin/proxy" serve` + "\n",
		"Type=notify\n", "WatchdogSec=", "Restart=on-failure\n", "RestartPreventExitStatus=78\n", "WantedBy=default.target\n",
	} {
		if !strings.Contains(proxy, want) {
			t.Errorf("proxy unit lacks %q:\n%s", want, proxy)
		}
	}
	gw := string(GatewayUnitText(o))
	for _, want := range []string{
		"ConditionPathExists=/run/qubes-service/qubes-claw-gateway\n",
		"After=qubes-claw-proxy.service\n", "Wants=qubes-claw-proxy.service\n",
		`ExecStart="/opt/claw bin/proxy" watch-gateway --health http://127.0.0.1:18800/ -- /home/user/.npm-global/bin/openclaw gateway --port 18800 --bind loopback` + "\n",
		"NotifyAccess=main\n", "WatchdogSec=", "Restart=on-failure\n",
	} {
		if !strings.Contains(gw, want) {
			t.Errorf("gateway unit lacks %q:\n%s", want, gw)
		}
	}
	if got := quoteExec("50%$HOME"); got != "50%%$$HOME" {
		t.Errorf("quoteExec = %q", got)
	}
}

func TestDetectPersistence(t *testing.T) {
	tests := []struct {
		name    string
		markers []string
		want    Persistence
		wantErr bool
	}{
		{name: "StandaloneVM or TemplateVM", markers: []string{"persistent-full", "this-is-appvm"}, want: Full},
		{name: "AppVM", markers: []string{"persistent-rw-only"}, want: RWOnly},
		{name: "DispVM", markers: []string{"persistent-none"}, want: None},
		{name: "not Qubes", want: NotQubes},
		{name: "contradiction", markers: []string{"persistent-full", "persistent-none"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, m := range tt.markers {
				os.WriteFile(filepath.Join(dir, m), nil, 0o644)
			}
			got, err := DetectPersistence(dir)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLingerHook(t *testing.T) {
	if got := string(LingerHook("user")); !strings.HasPrefix(got, "#!/bin/sh\n") || !strings.HasSuffix(got, "\nexec loginctl enable-linger user\n") {
		t.Errorf("hook:\n%s", got)
	}
	if got := string(LingerHook("o'x y")); !strings.HasSuffix(got, `exec loginctl enable-linger 'o'\''x y'`+"\n") {
		t.Errorf("quoting:\n%s", got)
	}
}

func TestWriteFileIdempotent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "b", "f")
	for i, want := range []bool{true, false} {
		changed, err := WriteFile(p, []byte("x\n"), 0o600, Owner{})
		if err != nil || changed != want {
			t.Fatalf("write %d: changed %v, %v; want %v", i, changed, err, want)
		}
	}
	if changed, _ := WriteFile(p, []byte("x\n"), 0o644, Owner{}); !changed {
		t.Error("a mode change is a change")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}

func TestSymlink(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "default.target.wants", "x.service")
	for i, want := range []bool{true, false} {
		changed, err := Symlink("../x.service", p, Owner{})
		if err != nil || changed != want {
			t.Fatalf("link %d: changed %v, %v; want %v", i, changed, err, want)
		}
	}
	if changed, err := Symlink("../y.service", p, Owner{}); !changed || err != nil {
		t.Errorf("retarget: %v, %v", changed, err)
	}
	if target, _ := os.Readlink(p); target != "../y.service" {
		t.Errorf("target %q", target)
	}
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o644)
	if _, err := Symlink("../x", plain, Owner{}); err == nil {
		t.Error("replaced a regular file")
	}
}

func TestSetYAML(t *testing.T) {
	doc := []byte("# mine\nprovider: openai # was here\nopenai:\n  base_url: http://x/v1\n  # the key\n  api_key: old\ntimeouts:\n  idle: 1m\n")
	out, err := SetYAML(doc, "ignored", [][2]string{{"provider", "anthropic"}, {"anthropic.api_key", "sk-ant-123"}, {"openai.api_key", "new"}, {"token", "t0k"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"# mine\n", "provider: anthropic # was here\n", "  # the key\n  api_key: new\n", "idle: 1m\n", "anthropic:\n  api_key: sk-ant-123\n", "token: t0k\n", "base_url: http://x/v1\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if got := GetYAML(out, "anthropic.api_key"); got != "sk-ant-123" {
		t.Errorf("GetYAML = %q", got)
	}
	fresh, err := SetYAML(nil, "written by setup", [][2]string{{"provider", "ollama"}})
	if err != nil || string(fresh) != "# written by setup\n\nprovider: ollama\n" {
		t.Errorf("fresh: %q, %v", fresh, err)
	}
	if _, err := SetYAML([]byte("provider: [1, 2]\nopenai: 3\n"), "", [][2]string{{"openai.api_key", "k"}}); err == nil {
		t.Error("no error setting a key under a scalar")
	}
}
