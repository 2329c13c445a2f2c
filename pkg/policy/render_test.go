package policy

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateRender = flag.Bool("update", false, "rewrite the golden files of render tests")

func defaultRender() RenderConfig {
	return RenderConfig{
		Service: "qubes-claw.Connect", ClientTag: "openclaw-client", ServerTag: "openclaw-server",
		Ports: []int{32125, 18789},
	}
}

// TestRenderGolden compares rendered policy files with testdata/render.
func TestRenderGolden(t *testing.T) {
	redirect := defaultRender()
	redirect.DefaultTarget = "openclaw"
	redirect.Autostart = true
	custom := RenderConfig{Service: "my.Svc", ClientTag: "c_1", ServerTag: "s-2", Ports: []int{8080}}
	for _, tt := range []struct {
		name string
		cfg  RenderConfig
	}{
		{"default", defaultRender()},
		{"default-target-autostart", redirect},
		{"custom", custom},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "render", tt.name+".policy")
			if *updateRender {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("render differs from %s (go test ./pkg/policy -update):\n%s", path, got)
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*RenderConfig)
		want string
	}{
		{"no service", func(c *RenderConfig) { c.Service = "" }, "service"},
		{"service with plus", func(c *RenderConfig) { c.Service = "a+b" }, "service"},
		{"bad client tag", func(c *RenderConfig) { c.ClientTag = "a b" }, "client_tag"},
		{"tag with @", func(c *RenderConfig) { c.ServerTag = "@anyvm" }, "server_tag"},
		{"same tags", func(c *RenderConfig) { c.ServerTag = c.ClientTag }, "both"},
		{"no ports", func(c *RenderConfig) { c.Ports = nil }, "ports"},
		{"port 0", func(c *RenderConfig) { c.Ports = []int{0} }, "not a TCP port"},
		{"port too big", func(c *RenderConfig) { c.Ports = []int{65536} }, "not a TCP port"},
		{"duplicate port", func(c *RenderConfig) { c.Ports = []int{1, 1} }, "twice"},
		{"default target keyword", func(c *RenderConfig) { c.DefaultTarget = "@dispvm" }, "default_target"},
		{"default target dom0", func(c *RenderConfig) { c.DefaultTarget = "dom0" }, "default_target"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultRender()
			tt.edit(&c)
			_, err := Render(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Render: %v, want an error about %s", err, tt.want)
			}
		})
	}
}

// TestRenderedDecisions evaluates the rendered file in front of the stock
// 90-default.policy: the acceptance, at the policy level.
func TestRenderedDecisions(t *testing.T) {
	dir := t.TempDir()
	b, err := Render(RenderConfig{
		Service: "qubes-claw.Connect", ClientTag: "openclaw-client", ServerTag: "openclaw-server",
		Ports: []int{32125, 18789}, DefaultTarget: "agent",
	})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "50-qubes-claw.policy"), b, 0o644)
	stock, _ := os.ReadFile(filepath.Join("testdata", "etc", "90-default.policy"))
	os.WriteFile(filepath.Join(dir, "90-default.policy"), stock, 0o644)
	pol, err := LoadDirs(dir)
	if err != nil {
		t.Fatal(err)
	}
	sys := System{
		"dom0":   {Name: "dom0", Class: "AdminVM", Running: true},
		"agent":  {Name: "agent", Class: "AppVM", Tags: []string{"openclaw-server"}, Running: true},
		"client": {Name: "client", Class: "AppVM", Tags: []string{"openclaw-client"}, Running: true},
		"other":  {Name: "other", Class: "AppVM", Running: true},
		"halted": {Name: "halted", Class: "AppVM", Tags: []string{"openclaw-server"}},
	}
	for _, tt := range []struct {
		source, service, arg, target string
		want                         Action
		target2                      string
	}{
		{"client", "qubes-claw.Connect", "32125", "agent", Allow, "agent"},
		{"client", "qubes-claw.Connect", "18789", "agent", Allow, "agent"},
		{"client", "qubes-claw.Connect", "32125", "@default", Allow, "agent"},
		{"client", "qubes-claw.Connect", "22", "agent", Deny, ""},
		{"client", "qubes-claw.Connect", "", "agent", Deny, ""},
		{"other", "qubes-claw.Connect", "32125", "agent", Deny, ""},
		{"client", "qubes-claw.Connect", "32125", "other", Deny, ""},
		// autostart=no: a halted server is not started by a client's call.
		{"client", "qubes-claw.Connect", "32125", "halted", Deny, ""},
		// Nothing else opens up between the tagged qubes.
		{"client", "qubes.VMShell", "", "agent", Deny, ""},
		{"agent", "qubes.VMShell", "", "client", Deny, ""},
		{"client", "qubes.ConnectTCP", "32125", "agent", Deny, ""},
	} {
		res, err := pol.Evaluate(Request{Service: tt.service, Argument: tt.arg, Source: tt.source, Target: tt.target}, sys)
		if err != nil {
			t.Fatal(err)
		}
		if res.Action != tt.want || (tt.want == Allow && res.Target != tt.target2) {
			t.Errorf("%s → %s+%s → %s: %s target %q (%s:%d %s), want %s %s", tt.source, tt.service, tt.arg, tt.target,
				res.Action, res.Target, res.File, res.Line, res.Reason, tt.want, tt.target2)
		}
	}
}

func TestValidFileName(t *testing.T) {
	for _, ok := range []string{"/etc/qubes/policy.d/50-qubes-claw.policy", "30-a_b.c.policy"} {
		if err := ValidFileName(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"50-Claw.policy", "50 claw.policy", ".50-claw.policy", "50-claw", "/x/.policy", "50-claw.policy.bak"} {
		err := ValidFileName(bad)
		if err == nil {
			t.Errorf("%s: accepted", bad)
		}
		if bad == "50-Claw.policy" && !errors.Is(err, ErrInvalidFilename) {
			t.Errorf("%s: %v, want ErrInvalidFilename", bad, err)
		}
	}
}
