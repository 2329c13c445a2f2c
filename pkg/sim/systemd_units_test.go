package sim

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSystemdParseTimespan(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"90", 90 * time.Second, false},
		{"5s", 5 * time.Second, false},
		{"100ms", 100 * time.Millisecond, false},
		{"1min 30s", 90 * time.Second, false},
		{"0.2", 200 * time.Millisecond, false},
		{"2h", 2 * time.Hour, false},
		{"infinity", time.Duration(1<<63 - 1), false},
		{"", 0, true},
		{"abc", 0, true},
		{"5x", 0, true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTimespan(tt.in)
			if (err != nil) != tt.err || (!tt.err && got != tt.want) {
				t.Fatalf("parseTimespan(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestSystemdSplitQuotedAndEnv(t *testing.T) {
	env := []string{"A=one two", "B=x"}
	for _, tt := range []struct {
		name, in string
		want     []string
	}{
		{"plain", `/bin/echo a b`, []string{"/bin/echo", "a", "b"}},
		{"quotes", `/bin/sh -c "echo 'hi there'"`, []string{"/bin/sh", "-c", "echo 'hi there'"}},
		{"split var", `/bin/echo $A`, []string{"/bin/echo", "one", "two"}},
		{"braced var is one word", `/bin/echo ${A}`, []string{"/bin/echo", "one two"}},
		{"inside a word", `/bin/echo pre-${B}-$B.`, []string{"/bin/echo", "pre-x-x."}},
		{"dollar escape", `/bin/sh -c "echo $$HOME"`, []string{"/bin/sh", "-c", "echo $HOME"}},
		{"unset is empty", `/bin/echo [$NOPE]`, []string{"/bin/echo", "[]"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := splitQuoted(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := expandEnvWords(w, env); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := splitQuoted(`"open`); err == nil {
		t.Fatal("unbalanced quote accepted")
	}
}

func TestSystemdUnitNames(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"foo", "foo.service"}, {"foo.service", "foo.service"}, {"multi-user.target", "multi-user.target"},
		{"qubes-vm@work", "qubes-vm@work.service"},
	} {
		if got := normalizeUnitName(tt.in); got != tt.want {
			t.Errorf("normalizeUnitName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if tpl, inst, ok := splitInstance("qubes-vm@work.service"); !ok || tpl != "qubes-vm@.service" || inst != "work" {
		t.Errorf("splitInstance: %q %q %v", tpl, inst, ok)
	}
	if validUnitName("../x.service") || validUnitName("x") || !validUnitName("a-b_c.d@e.service") {
		t.Error("validUnitName")
	}
}

// TestSystemdLoadUnit loads units from a domain's root: search path order,
// template instances, drop-ins (an empty ExecStart= resets), specifiers,
// unknown keys as warnings, and the bad-setting checks.
func TestSystemdLoadUnit(t *testing.T) {
	m, err := CreateMachine(filepath.Join(t.TempDir(), "m"), Info{})
	if err != nil {
		t.Fatal(err)
	}
	g := systemManager(m, Dom0)
	writeFile(t, m, Dom0, "/usr/lib/systemd/system/a.service", []byte("[Unit]\nDescription=vendor\n[Service]\nExecStart=/bin/true\n"))
	writeFile(t, m, Dom0, "/etc/systemd/system/a.service", []byte(`[Unit]
Description=admin %n
After=x.service \
  y.service
ConditionPathExists=|/run/qubes-service/a
ConditionPathExists=|!/run/nope
Bogus=1
[Service]
Type=notify
ExecStart=/bin/false
Environment="A=1 2" B=3
Restart=on-failure
RestartSec=0.5
RuntimeDirectory=claw
[Install]
WantedBy=multi-user.target
`))
	writeFile(t, m, Dom0, "/usr/lib/systemd/system/a.service.d/10-x.conf", []byte("[Service]\nExecStart=\nExecStart=/bin/vendor\n"))
	writeFile(t, m, Dom0, "/etc/systemd/system/a.service.d/10-x.conf", []byte("[Service]\nExecStart=\nExecStart=/bin/admin %i\n"))
	writeFile(t, m, Dom0, "/etc/systemd/system/a.service.d/20-y.conf", []byte("[Service]\nUser=claw\n"))
	u, err := g.readUnit("a.service")
	if err != nil {
		t.Fatal(err)
	}
	if u.Fragment != "/etc/systemd/system/a.service" || u.Description != "admin a.service" {
		t.Errorf("fragment %q description %q", u.Fragment, u.Description)
	}
	if want := []string{"/etc/systemd/system/a.service.d/10-x.conf", "/etc/systemd/system/a.service.d/20-y.conf"}; !reflect.DeepEqual(u.DropIns, want) {
		t.Errorf("dropins %q, want %q", u.DropIns, want)
	}
	if !reflect.DeepEqual(u.ExecStart, []string{"/bin/admin %i"}) || u.User != "claw" || u.Type != "notify" {
		t.Errorf("ExecStart %q User %q Type %q", u.ExecStart, u.User, u.Type)
	}
	if !reflect.DeepEqual(u.After, []string{"x.service", "y.service"}) || !reflect.DeepEqual(u.Environment, []string{"A=1 2", "B=3"}) {
		t.Errorf("After %q Environment %q", u.After, u.Environment)
	}
	if u.Restart != "on-failure" || u.RestartSec != 500*time.Millisecond || u.Bad != "" || !u.hasInstall() {
		t.Errorf("Restart %q %v bad %q", u.Restart, u.RestartSec, u.Bad)
	}
	if len(u.Warnings) != 1 || !strings.Contains(u.Warnings[0], "Unknown key name 'Bogus' in section 'Unit'") {
		t.Errorf("warnings %q", u.Warnings)
	}
	// The "|" conditions: one of them holds (the negated one).
	if ok, failed := g.checkConditions(u); !ok {
		t.Errorf("conditions failed at %v", failed)
	}

	writeFile(t, m, Dom0, "/usr/lib/systemd/system/tpl@.service", []byte("[Service]\nExecStart=/bin/echo %i %I %p\n"))
	u, err = g.readUnit("tpl@a-b.service")
	if err != nil || u.Fragment != "/usr/lib/systemd/system/tpl@.service" {
		t.Fatalf("template: %v %+v", err, u)
	}
	cmd, err := g.parseExec(u, u.ExecStart[0], nil)
	if err != nil || !reflect.DeepEqual(cmd.argv, []string{"/bin/echo", "a-b", "a/b", "tpl"}) {
		t.Errorf("template argv %q %v", cmd.argv, err)
	}

	for _, tt := range []struct{ name, body, bad string }{
		{"two-execstart", "[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n", "more than one ExecStart="},
		{"no-execstart", "[Service]\nType=simple\nExecStop=/bin/a\n", "no ExecStart= setting"},
		{"nothing", "[Service]\nType=oneshot\n", "no ExecStart=, ExecStop="},
		{"oneshot-always", "[Service]\nType=oneshot\nExecStart=/bin/a\nRestart=always\n", "Restart= set to either always"},
		{"oneshot-many", "[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, m, Dom0, "/etc/systemd/system/"+tt.name+".service", []byte(tt.body))
			u, err := g.readUnit(tt.name + ".service")
			if err != nil {
				t.Fatal(err)
			}
			if (tt.bad == "") != (u.Bad == "") || !strings.Contains(u.Bad, tt.bad) {
				t.Fatalf("Bad = %q, want %q", u.Bad, tt.bad)
			}
		})
	}
	if _, err := g.readUnit("missing.service"); err != errUnitNotFound {
		t.Errorf("missing unit: %v", err)
	}
}

// TestSystemdConditions evaluates conditions against the domain's root,
// including the /var/run spelling of the official qubes-service drop-in.
func TestSystemdConditions(t *testing.T) {
	m, err := CreateMachine(filepath.Join(t.TempDir(), "m"), Info{})
	if err != nil {
		t.Fatal(err)
	}
	g := systemManager(m, Dom0)
	writeFile(t, m, Dom0, "/run/qubes-service/on", nil)
	writeFile(t, m, Dom0, "/etc/full", []byte("x"))
	writeFile(t, m, Dom0, "/etc/empty", nil)
	cond := func(lines ...string) *unit {
		u := &unit{}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, "=")
			c, _ := parseCondition(k, v)
			u.Conditions = append(u.Conditions, c)
		}
		return u
	}
	for _, tt := range []struct {
		name  string
		lines []string
		want  bool
	}{
		{"none", nil, true},
		{"exists", []string{"ConditionPathExists=/run/qubes-service/on"}, true},
		{"var-run", []string{"ConditionPathExists=/var/run/qubes-service/on"}, true},
		{"missing", []string{"ConditionPathExists=/run/qubes-service/off"}, false},
		{"negated", []string{"ConditionPathExists=!/run/qubes-service/off"}, true},
		{"and", []string{"ConditionPathExists=/run/qubes-service/on", "ConditionPathExists=/run/qubes-service/off"}, false},
		{"or", []string{"ConditionPathExists=|/run/qubes-service/off", "ConditionPathExists=|/run/qubes-service/on"}, true},
		{"or-none", []string{"ConditionPathExists=|/run/qubes-service/a", "ConditionPathExists=|/run/qubes-service/b"}, false},
		{"not-empty", []string{"ConditionFileNotEmpty=/etc/full"}, true},
		{"empty", []string{"ConditionFileNotEmpty=/etc/empty"}, false},
		{"kernel-cmdline", []string{"ConditionKernelCommandLine=!qubes.skip_autostart"}, true},
		{"directory", []string{"ConditionPathIsDirectory=/run/qubes-service"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if ok, _ := g.checkConditions(cond(tt.lines...)); ok != tt.want {
				t.Fatalf("got %v, want %v", ok, tt.want)
			}
		})
	}
}

// TestSystemdQubesServiceFlags checks qubes-sysinit's flags per VM type.
func TestSystemdQubesServiceFlags(t *testing.T) {
	m := newAdminMachine(t)
	mustRun(t, m, "qvm-service", "work", "foo", "on")
	mustRun(t, m, "qvm-service", "work", "qubes-update-check", "off")
	if err := writeQubesServices(m, "work"); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/run/qubes-service/foo": true, "/run/qubes-service/meminfo-writer": true,
		"/run/qubes-service/qubes-update-check": false, "/run/qubes-service/qubes-network": false,
		"/run/qubes/this-is-appvm": true, "/run/qubes/persistent-rw-only": true,
	} {
		if exists(m, "work", p) != want {
			t.Errorf("work: %s exists = %v, want %v", p, !want, want)
		}
	}
	if err := writeQubesServices(m, "sys-net"); err != nil {
		t.Fatal(err)
	}
	if !exists(m, "sys-net", "/run/qubes-service/qubes-network") || !exists(m, "sys-net", "/run/qubes/this-is-netvm") {
		t.Error("sys-net is not a NetVM")
	}
}
