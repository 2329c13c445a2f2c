package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

type testVM struct {
	Name string `mapstructure:"name"`
	Mode string `mapstructure:"mode"`
}

type testConfig struct {
	Log struct {
		Level string `mapstructure:"level" flag:"log-level" doc:"log level"`
	} `mapstructure:"log"`
	KeyDir  Path          `mapstructure:"key_dir" flag:"key-dir" doc:"key directory"`
	Queue   Path          `mapstructure:"queue"`
	Timeout time.Duration `mapstructure:"timeout" flag:"timeout,t"`
	Port    int           `mapstructure:"port" flag:"port"`
	Allow   []string      `mapstructure:"allow"`
	VMs     []testVM      `mapstructure:"vms"`
	Token   Secret        `mapstructure:"token"`
}

func testSpec(dir string) Spec[testConfig] {
	return Spec[testConfig]{
		Program:    "testprog",
		EnvPrefix:  "TPROG",
		SystemFile: Path(filepath.Join(dir, "system.yaml")),
		UserFile:   Path(filepath.Join(dir, "user.yaml")),
		Defaults: func() testConfig {
			var c testConfig
			c.Log.Level = "info"
			c.KeyDir = "/etc/testprog/keys"
			c.Queue = "~/.testprog/queue"
			c.Timeout = 300 * time.Second
			c.Port = 1
			c.Allow = []string{"a", "b"}
			return c
		},
	}
}

func TestLoadLayers(t *testing.T) {
	tests := []struct {
		name   string
		system string
		user   string
		env    map[string]string
		flags  []string
		check  func(t *testing.T, c testConfig)
	}{
		{name: "defaults", check: func(t *testing.T, c testConfig) {
			if c.Log.Level != "info" || c.Port != 1 || c.Timeout != 300*time.Second || strings.Join(c.Allow, ",") != "a,b" {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{name: "system file over defaults", system: "port: 2\nlog:\n  level: debug\nvms:\n  - name: Work\n    mode: full\n",
			check: func(t *testing.T, c testConfig) {
				if c.Port != 2 || c.Log.Level != "debug" {
					t.Errorf("system file not applied: %+v", c)
				}
				if len(c.VMs) != 1 || c.VMs[0].Name != "Work" {
					t.Errorf("VM names must keep their case: %+v", c.VMs)
				}
			}},
		{name: "user file over system file", system: "port: 2\ntimeout: 10s\n", user: "port: 3\n",
			check: func(t *testing.T, c testConfig) {
				if c.Port != 3 || c.Timeout != 10*time.Second {
					t.Errorf("want port 3 from user file, timeout from system file: %+v", c)
				}
			}},
		{name: "env over files", system: "port: 2\n", user: "port: 3\n",
			env: map[string]string{"TPROG_PORT": "4", "TPROG_LOG_LEVEL": "warn", "TPROG_ALLOW": "x,y,z"},
			check: func(t *testing.T, c testConfig) {
				if c.Port != 4 || c.Log.Level != "warn" || strings.Join(c.Allow, ",") != "x,y,z" {
					t.Errorf("env not applied: %+v", c)
				}
			}},
		{name: "flags over env", env: map[string]string{"TPROG_PORT": "4", "TPROG_TIMEOUT": "5s"},
			flags: []string{"--port", "5", "-t", "7s"},
			check: func(t *testing.T, c testConfig) {
				if c.Port != 5 || c.Timeout != 7*time.Second {
					t.Errorf("flags not applied: %+v", c)
				}
			}},
		{name: "unset flags keep lower layers", system: "port: 2\n", flags: []string{"--log-level", "error"},
			check: func(t *testing.T, c testConfig) {
				if c.Port != 2 || c.Log.Level != "error" {
					t.Errorf("got %+v", c)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeIf(t, filepath.Join(dir, "system.yaml"), tt.system)
			writeIf(t, filepath.Join(dir, "user.yaml"), tt.user)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			spec := testSpec(dir)
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			spec.AddFlags(fs)
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			c, _, err := spec.Load(fs)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadStrict(t *testing.T) {
	tests := []struct {
		name    string
		system  string
		env     map[string]string
		flags   []string
		wantErr []string // substrings, all required
		wantIs  error
	}{
		{name: "unknown key", system: "port: 2\nprot: 3\n", wantErr: []string{"system.yaml", `"prot"`}},
		{name: "unknown nested key", system: "log:\n  levle: debug\n", wantErr: []string{"system.yaml", `"log.levle"`}},
		{name: "unknown key in list item", system: "vms:\n  - name: a\n    mdoe: full\n", wantErr: []string{"system.yaml", `"vms[0].mdoe"`}},
		{name: "wrong type", system: "port: abc\n", wantErr: []string{"system.yaml", "port"}},
		{name: "string for int is not weakly accepted in files", system: "port: \"12\"\n", wantErr: []string{"system.yaml", "port"}},
		{name: "duration without unit", system: "timeout: 30\n", wantErr: []string{"system.yaml", "unit"}},
		{name: "bad yaml", system: "port: [\n", wantErr: []string{"system.yaml"}},
		{name: "unknown env var", env: map[string]string{"TPROG_PROT": "1"}, wantErr: []string{"TPROG_PROT"}},
		{name: "bad env type", env: map[string]string{"TPROG_PORT": "many"}, wantErr: []string{"TPROG_PORT"}},
		{name: "explicit config missing", flags: []string{"--config", "/nonexistent/x.yaml"}, wantIs: ErrNoConfig},
		{name: "explicit config via env missing", env: map[string]string{"TPROG_CONFIG": "/nonexistent/y.yaml"}, wantIs: ErrNoConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeIf(t, filepath.Join(dir, "system.yaml"), tt.system)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			spec := testSpec(dir)
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			spec.AddFlags(fs)
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			_, _, err := spec.Load(fs)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
		})
	}
}

func TestRelocation(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home", "user")
	t.Setenv(RootEnv, root)
	t.Setenv("HOME", home)
	// The system file itself is looked up inside the root.
	spec := testSpec("/etc/testprog")
	writeIf(t, filepath.Join(root, "etc", "testprog", "system.yaml"), "queue: /var/spool/q\n")
	c, loaded, err := spec.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Files) != 1 || loaded.Files[0] != filepath.Join(root, "etc/testprog/system.yaml") {
		t.Errorf("loaded %v", loaded.Files)
	}
	if want := filepath.Join(root, "etc/testprog/keys"); string(c.KeyDir) != want {
		t.Errorf("key_dir = %s, want %s", c.KeyDir, want)
	}
	if want := filepath.Join(root, "var/spool/q"); string(c.Queue) != want {
		t.Errorf("queue = %s, want %s", c.Queue, want)
	}

	tests := []struct{ in, want string }{
		{"~/.x", filepath.Join(home, ".x")},
		{"/etc/x", filepath.Join(root, "etc/x")},
		{filepath.Join(root, "run/x"), filepath.Join(root, "run/x")},
		{"rel/x", "rel/x"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Resolve(Path(tt.in), root, home); string(got) != tt.want {
			t.Errorf("Resolve(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Resolve("/etc/x", "", home); got != "/etc/x" {
		t.Errorf("no root: got %q", got)
	}
}

func TestDescribe(t *testing.T) {
	d := testSpec("/d").Describe()
	byName := map[string]Key{}
	for _, k := range d.Keys {
		byName[k.Name] = k
	}
	if k := byName["log.level"]; k.Env != "TPROG_LOG_LEVEL" || k.Flag != "log-level" || k.Default != "info" {
		t.Errorf("log.level = %+v", k)
	}
	if k := byName["timeout"]; k.Short != "t" || k.Default != "5m0s" {
		t.Errorf("timeout = %+v", k)
	}
	if k := byName["allow"]; k.Default != "a,b" {
		t.Errorf("allow = %+v", k)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := Secret("hunter2-very-secret")
	for _, out := range []string{s.String(), func() string { b, _ := s.MarshalText(); return string(b) }()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("secret leaked: %q", out)
		}
	}
	if s.Reveal() != "hunter2-very-secret" {
		t.Error("Reveal must return the value")
	}
}

func writeIf(t *testing.T, path, content string) {
	t.Helper()
	if content == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
