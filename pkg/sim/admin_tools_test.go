package sim

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestAdminCreate(t *testing.T) {
	m := newAdminMachine(t)
	tests := []struct {
		name     string
		args     []string
		code     int
		wantErr  string // last line of stderr
		wantVM   string // domain that must exist afterwards
		noVMName string // domain that must not exist afterwards
	}{
		// §3.3: label is mandatory, validated by the client (argparse, exit 2).
		{"no label", []string{"x1"}, 2, "qvm-create: error: --label option is mandatory", "", "x1"},
		{"bad label", []string{"-l", "pink", "x2"}, 2,
			"qvm-create: error: no such label: 'pink'; available: red, orange, yellow, green, gray, blue, purple, black", "", "x2"},
		{"no name", []string{"-l", "red"}, 2, "qvm-create: error: VMNAME is mandatory", "", ""},
		{"bad class", []string{"-C", "FooVM", "-l", "red", "x3"}, 2, "qvm-create: error: no such domain class: 'FooVM'", "", "x3"},
		{"bad property token", []string{"--prop", "memory", "-l", "red", "x4"}, 2, "qvm-create: error: Invalid property token: 'memory'", "", "x4"},
		// qubesd refusals: "app: Error creating VM: ..." and exit 1.
		{"name starts with digit", []string{"-l", "red", "1vm"}, 1,
			"app: Error creating VM: VM name cannot start with hyphen, underscore, dot or numbers", "", "1vm"},
		{"name illegal char", []string{"-l", "red", "a+b"}, 1, "app: Error creating VM: VM name contains illegal characters", "", "a+b"},
		{"name too long", []string{"-l", "red", strings.Repeat("a", 32)}, 1,
			"app: Error creating VM: VM name must be shorter than 32 characters", "", ""},
		{"name none", []string{"-l", "red", "none"}, 1, "app: Error creating VM: VM name cannot be 'none' nor 'default'", "", ""},
		{"name default", []string{"-l", "red", "default"}, 1, "app: Error creating VM: VM name cannot be 'none' nor 'default'", "", ""},
		{"exists", []string{"-l", "red", "work"}, 1, "app: Error creating VM: Qube already exists: work", "work", ""},
		{"missing template", []string{"-l", "red", "-t", "nope", "x5"}, 1, "app: Error creating VM: No such domain: 'nope'", "", "x5"},
		{"template of wrong class", []string{"-l", "red", "-t", "work", "x6"}, 1,
			"app: Error creating VM: wrong VM class: domains['work'] is of type AppVM and not TemplateVM", "", "x6"},
		{"template for TemplateVM", []string{"-C", "TemplateVM", "-t", "fedora-41", "-l", "red", "x7"}, 1,
			"app: Error creating VM: TemplateVM cannot be based on template", "", "x7"},
		{"disp without dvm template", []string{"--disp", "x8"}, 1,
			"app: Error creating VM: Template for the qube not specified, nor default template set.", "", "x8"},
		// §3.3: exit 2 when a property fails; the VM exists anyway.
		{"bad property value", []string{"-l", "red", "--prop", "memory=0", "x9"}, 2,
			"app: Error setting property memory (but VM created): memory must be positive", "x9", ""},
		{"unknown property", []string{"-l", "red", "--property", "frobs=1", "x10"}, 2,
			"app: Error setting property frobs (but VM created): Invalid property 'frobs' of x10", "x10", ""},
		{"ok with props", []string{"--label=green", "--prop", "memory=800", "--prop", "autostart=yes", "x11"}, 0, "", "x11", ""},
		{"label by short option cluster", []string{"-qlyellow", "x12"}, 0, "", "x12", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAdmin(t, m, "", "qvm-create", tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", r.code, tt.code, r.err)
			}
			if tt.wantErr != "" && lastLine(r.err) != tt.wantErr {
				t.Errorf("stderr last line %q, want %q", lastLine(r.err), tt.wantErr)
			}
			if tt.code == 2 && strings.HasPrefix(tt.wantErr, "qvm-create: error:") && !strings.HasPrefix(r.err, "usage: qvm-create ") {
				t.Errorf("argparse error without usage: %q", r.err)
			}
			st, err := m.Load()
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantVM != "" && st.Domain(tt.wantVM) == nil {
				t.Errorf("%s not created", tt.wantVM)
			}
			if tt.noVMName != "" && (st.Domain(tt.noVMName) != nil || exists(m, tt.noVMName, "/")) {
				t.Errorf("%s exists after a failed create", tt.noVMName)
			}
		})
	}

	st, err := m.Load()
	if err != nil {
		t.Fatal(err)
	}
	uuidRe := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	qids := map[int]string{}
	for _, n := range st.Names() {
		d := st.Domains[n]
		if other, dup := qids[d.QID]; dup {
			t.Errorf("qid %d of %s also used by %s", d.QID, n, other)
		}
		qids[d.QID] = n
		if n != Dom0 && !uuidRe.MatchString(d.UUID) {
			t.Errorf("uuid of %s = %q, want a random v4 uuid", n, d.UUID)
		}
		if n != Dom0 && !d.HasTag("created-by-dom0") {
			t.Errorf("%s lacks tag created-by-dom0: %v", n, d.Tags)
		}
	}
	if got := st.Domains["x11"]; got.Props["memory"] != "800" || got.Props["autostart"] != "True" || got.Props["label"] != "green" {
		t.Errorf("x11 props = %v", got.Props)
	}
	// §3.4: autostart creates the systemd link in dom0.
	link := m.Path(Dom0, "/etc/systemd/system/multi-user.target.wants/qubes-vm@x11.service")
	if target, err := os.Readlink(link); err != nil || target != "/usr/lib/systemd/system/qubes-vm@.service" {
		t.Errorf("autostart link: %q, %v", target, err)
	}
	// The StandaloneVM clone has the template's files but no template.
	vault := st.Domains["vault"]
	if vault.Class != StandaloneVM || vault.Props["template"] != "" || vault.Props["label"] != "purple" {
		t.Errorf("vault = %+v", vault)
	}
	if !exists(m, "vault", "/etc/os-release") || !exists(m, "vault", "/usr/bin/big-binary") {
		t.Error("vault is not a clone of fedora-41's root")
	}
	if r := runAdmin(t, m, "", "qvm-prefs", "vault", "template"); r.code != 2 || lastLine(r.err) != "qvm-prefs: error: no such property: 'template'" {
		t.Errorf("vault template: %+v", r)
	}
}

func TestAdminCreateStandaloneWithoutTemplateIsEmpty(t *testing.T) {
	m := newAdminMachine(t)
	mustRun(t, m, "qvm-create", "--class", "StandaloneVM", "-l", "gray", "bare")
	if exists(m, "bare", "/etc/os-release") {
		t.Error("StandaloneVM without template got template files")
	}
	if !exists(m, "bare", "/usr/local/etc/qubes-rpc") || !exists(m, "bare", "/home/user") {
		t.Error("StandaloneVM lacks the root skeleton")
	}
}

func TestAdminCreateDispVM(t *testing.T) {
	m := newAdminMachine(t)
	if r := runAdmin(t, m, "", "qvm-create", "--disp", "-t", "work", "disp1"); r.code != 1 ||
		lastLine(r.err) != "app: Error creating VM: template for disposable must have template_for_dispvms=True" {
		t.Fatalf("DispVM from non-dvm template: %+v", r)
	}
	mustRun(t, m, "qvm-prefs", "work", "template_for_dispvms", "True")
	mustRun(t, m, "qvm-create", "--disp", "-t", "work", "disp1")
	if got := mustRun(t, m, "qvm-prefs", "disp1", "label"); got != "red\n" {
		t.Errorf("--disp label = %q, want red (qvm_create.py default)", got)
	}
	if got := mustRun(t, m, "qvm-prefs", "disp1", "default_dispvm"); got != "work\n" {
		t.Errorf("DispVM default_dispvm = %q, want its template", got)
	}
}

// Property defaults and semantics: qubes.md §3.4 and qubes-core-admin's
// property table.
func TestAdminPrefs(t *testing.T) {
	m := newAdminMachine(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		out     string // exact stdout when code is 0
		wantErr string // last stderr line otherwise
	}{
		{"memory default", []string{"work", "memory"}, 0, "400\n", ""},
		{"maxmem default", []string{"work", "maxmem"}, 0, "4000\n", ""},
		{"vcpus default", []string{"work", "vcpus"}, 0, "2\n", ""},
		{"autostart default", []string{"work", "autostart"}, 0, "False\n", ""},
		{"default_user default", []string{"work", "default_user"}, 0, "user\n", ""},
		{"dash converted", []string{"work", "default-user"}, 0, "user\n", ""},
		{"template_for_dispvms default", []string{"work", "template_for_dispvms"}, 0, "False\n", ""},
		{"include_in_backups default", []string{"work", "include_in_backups"}, 0, "True\n", ""},
		{"qrexec_timeout default", []string{"work", "qrexec_timeout"}, 0, "60\n", ""},
		{"virt_mode default", []string{"work", "virt_mode"}, 0, "pvh\n", ""},
		{"klass", []string{"work", "klass"}, 0, "AppVM\n", ""},
		{"template", []string{"work", "template"}, 0, "fedora-41\n", ""},
		{"netvm default is default_netvm", []string{"work", "netvm"}, 0, "sys-net\n", ""},
		{"template netvm default is none", []string{"fedora-41", "netvm"}, 0, "", ""},
		{"kernel empty prints empty line", []string{"work", "kernel"}, 0, "\n", ""},
		{"updateable appvm", []string{"work", "updateable"}, 0, "False\n", ""},
		{"updateable standalone", []string{"vault", "updateable"}, 0, "True\n", ""},
		{"unknown VM", []string{"nope", "memory"}, 2, "", "qvm-prefs: error: no such domain: 'nope'"},
		{"unknown property", []string{"work", "frobs"}, 2, "", "qvm-prefs: error: no such property: 'frobs'"},
		{"unknown property set", []string{"work", "frobs", "1"}, 2, "", "qvm-prefs: error: no such property: 'frobs'"},
		{"too many args", []string{"work", "memory", "1", "2"}, 2, "", "qvm-prefs: error: unrecognized arguments: 2"},
		{"no VM", nil, 2, "", "qvm-prefs: error: the following arguments are required: VMNAME"},
		{"bad bool", []string{"work", "autostart", "maybe"}, 1, "", "qvm-prefs: error: Invalid literal for boolean property: 'maybe'"},
		{"bad int", []string{"work", "memory", "lots"}, 1, "", "qvm-prefs: error: Failed to parse property value as int"},
		{"zero memory", []string{"work", "memory", "0"}, 1, "", "qvm-prefs: error: memory must be positive"},
		{"negative maxmem", []string{"work", "maxmem", "-1"}, 1, "", "qvm-prefs: error: maxmem must be positive or zero"},
		{"netvm without network", []string{"work", "netvm", "vault"}, 1, "", "qvm-prefs: error: The vault qube does not provide network"},
		{"netvm missing", []string{"work", "netvm", "nope"}, 1, "", "qvm-prefs: error: Can't set netvm to non-existing qube nope"},
		{"netvm loop", []string{"sys-net", "netvm", "sys-net"}, 1, "", "qvm-prefs: error: Loops in network are unsupported"},
		{"template not a template", []string{"work", "template", "vault"}, 1, "",
			"qvm-prefs: error: wrong VM class: domains['vault'] is of type StandaloneVM and not TemplateVM"},
		{"template reset refused", []string{"work", "template", "-D"}, 1, "",
			"qvm-prefs: error: Cannot unset template. You can set it to the current default (fedora-41) instead"},
		{"label unknown", []string{"work", "label", "pink"}, 1, "", "qvm-prefs: error: Label does not exist: pink"},
		{"default_dispvm not dvm template", []string{"work", "default_dispvm", "vault"}, 1, "",
			"qvm-prefs: error: Cannot set invalid property to qube 'work', default_dispvm 'vault' has template_for_dispvms set to False"},
		{"virt_mode bad", []string{"work", "virt_mode", "kvm"}, 1, "", "qvm-prefs: error: Invalid virtualization mode, supported values: hvm, pv, pvh"},
		{"default_user bad", []string{"work", "default_user", "a b"}, 1, "",
			"qvm-prefs: error: Username can contain only those characters: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+,."},
		// Read-only properties: write-once ones fail inside qubesd with an
		// unhandled exception, forbidden ones with a message.
		{"set name", []string{"work", "name", "other"}, 1, "", "qvm-prefs: error: Got empty response from qubesd. See journalctl in dom0 for details."},
		{"set qid", []string{"work", "qid", "42"}, 1, "", "qvm-prefs: error: Got empty response from qubesd. See journalctl in dom0 for details."},
		{"set uuid", []string{"work", "uuid", "00000000-0000-0000-0000-000000000001"}, 1, "", "qvm-prefs: error: Got empty response from qubesd. See journalctl in dom0 for details."},
		{"set qid not int", []string{"work", "qid", "x"}, 1, "", "qvm-prefs: error: Failed to parse property value as int"},
		{"set klass", []string{"work", "klass", "TemplateVM"}, 1, "", "qvm-prefs: error: property 'klass' on AppVM instance cannot be set"},
		{"reset klass is a no-op", []string{"work", "klass", "-D"}, 0, "", ""},
		// dom0 has a reduced property set.
		{"dom0 memory", []string{"dom0", "memory"}, 2, "", "qvm-prefs: error: no such property: 'memory'"},
		{"dom0 name", []string{"dom0", "name"}, 0, "dom0\n", ""},
		{"dom0 set name", []string{"dom0", "name", "x"}, 1, "", "qvm-prefs: error: property 'name' on AdminVM instance cannot be set"},
		{"dom0 klass", []string{"dom0", "klass"}, 0, "AdminVM\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAdmin(t, m, "", "qvm-prefs", tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", r.code, tt.code, r.out, r.err)
			}
			if tt.code == 0 && r.out != tt.out {
				t.Errorf("stdout %q, want %q", r.out, tt.out)
			}
			if tt.wantErr != "" && lastLine(r.err) != tt.wantErr {
				t.Errorf("stderr %q, want last line %q", r.err, tt.wantErr)
			}
			if tt.code == 2 && !strings.HasPrefix(r.err, "usage: qvm-prefs ") {
				t.Errorf("argparse error without usage: %q", r.err)
			}
		})
	}
}

func TestAdminPrefsSetReset(t *testing.T) {
	m := newAdminMachine(t)
	get := func(vm, prop string) string { return mustRun(t, m, "qvm-prefs", vm, prop) }
	isDefault := func(vm, prop string) bool {
		for _, line := range strings.Split(get(vm, ""), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == prop {
				return f[1] == "D"
			}
		}
		t.Fatalf("%s not listed for %s", prop, vm)
		return false
	}
	_ = isDefault
	list := func(vm string) string { return mustRun(t, m, "qvm-prefs", vm) }
	marker := func(vm, prop string) string {
		for _, line := range strings.Split(list(vm), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == prop {
				return f[1]
			}
		}
		t.Fatalf("%s not listed for %s", prop, vm)
		return ""
	}

	mustRun(t, m, "qvm-prefs", "work", "memory", "800")
	if get("work", "memory") != "800\n" || marker("work", "memory") != "-" {
		t.Error("memory set: value or marker wrong")
	}
	mustRun(t, m, "qvm-prefs", "work", "memory", "--default")
	if get("work", "memory") != "400\n" || marker("work", "memory") != "D" {
		t.Error("memory reset: value or marker wrong")
	}
	// TemplateBasedVMs take memory, vcpus, default_user from the template.
	mustRun(t, m, "qvm-prefs", "fedora-41", "memory", "1000")
	mustRun(t, m, "qvm-prefs", "fedora-41", "default_user", "alice")
	if get("work", "memory") != "1000\n" || get("work", "default_user") != "alice\n" || marker("work", "memory") != "D" {
		t.Error("work does not inherit the template's memory/default_user")
	}
	// Booleans: 1/yes/true/on and 0/no/false/off, any case; printed True/False.
	for in, want := range map[string]string{"1": "True", "YES": "True", "true": "True", "On": "True",
		"0": "False", "no": "False", "FALSE": "False", "off": "False"} {
		mustRun(t, m, "qvm-prefs", "work", "debug", in)
		if got := get("work", "debug"); got != want+"\n" {
			t.Errorf("debug %s → %q, want %s", in, got, want)
		}
	}
	// netvm: "none" (any case) and "" mean no netvm; get prints nothing,
	// the listing prints None, qvm-ls shows "-".
	for _, none := range []string{"none", "None", ""} {
		mustRun(t, m, "qvm-prefs", "work", "netvm", "sys-net")
		mustRun(t, m, "qvm-prefs", "work", "netvm", none)
		if got := get("work", "netvm"); got != "" {
			t.Errorf("netvm %q → %q", none, got)
		}
	}
	if !strings.Contains(list("work"), "netvm                 -  None\n") {
		t.Errorf("listing lacks 'netvm  -  None':\n%s", list("work"))
	}
	mustRun(t, m, "qvm-prefs", "-D", "work", "netvm")
	if get("work", "netvm") != "sys-net\n" {
		t.Error("netvm reset does not go back to default_netvm")
	}
	// provides_network cannot be dropped while qubes use it.
	if r := runAdmin(t, m, "", "qvm-prefs", "sys-net", "provides_network", "False"); r.code != 1 ||
		lastLine(r.err) != "qvm-prefs: error: The qube is still used by other qubes, change theirs 'netvm' first" {
		t.Errorf("provides_network False with users: %+v", r)
	}
	// The template cannot change while the qube runs.
	setPower(t, m, "work", Running)
	mustRun(t, m, "qvm-create", "-C", "TemplateVM", "-l", "black", "debian-13")
	if r := runAdmin(t, m, "", "qvm-prefs", "work", "template", "debian-13"); r.code != 1 ||
		lastLine(r.err) != "qvm-prefs: error: Cannot change template while qube is running" {
		t.Errorf("template change while running: %+v", r)
	}
	setPower(t, m, "work", Halted)
	mustRun(t, m, "qvm-prefs", "work", "template", "debian-13")
	// autostart toggles the dom0 unit link (§3.4).
	link := m.Path(Dom0, "/etc/systemd/system/multi-user.target.wants/qubes-vm@work.service")
	mustRun(t, m, "qvm-prefs", "work", "autostart", "true")
	if _, err := os.Lstat(link); err != nil {
		t.Errorf("autostart True: %v", err)
	}
	mustRun(t, m, "qvm-prefs", "work", "autostart", "-D")
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("autostart reset left the link: %v", err)
	}
}

func TestAdminPropAPI(t *testing.T) {
	m := newAdminMachine(t)
	mustRun(t, m, "qvm-prefs", "work", "vcpus", "4")
	st, err := m.Load()
	if err != nil {
		t.Fatal(err)
	}
	work := st.Domain("work")
	if n, err := work.PropInt(st, "vcpus"); n != 4 || err != nil {
		t.Errorf("PropInt vcpus = %d, %v", n, err)
	}
	if b, err := work.PropBool(st, "autostart"); b || err != nil {
		t.Errorf("PropBool autostart = %v, %v", b, err)
	}
	if v, def, err := work.Prop(st, "default_user"); v != "user" || !def || err != nil {
		t.Errorf("Prop default_user = %q, %v, %v", v, def, err)
	}
	if v, def, err := work.Prop(st, "vcpus"); v != "4" || def || err != nil {
		t.Errorf("Prop vcpus = %q, %v, %v", v, def, err)
	}
	if _, _, err := work.Prop(st, "frobs"); err == nil || !isNoSuch(err) {
		t.Errorf("Prop frobs: %v", err)
	}
	if _, err := work.PropBool(st, "memory"); err == nil {
		t.Error("PropBool on an int property succeeded")
	}
}

func isNoSuch(err error) bool { return strings.HasPrefix(err.Error(), ErrNoSuchProperty.Error()) }

// §3.5.
func TestAdminTags(t *testing.T) {
	m := newAdminMachine(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		out     string
		wantErr string
	}{
		{"list initial", []string{"work"}, 0, "created-by-dom0\n", ""},
		{"add two", []string{"work", "add", "claw-server", "b_2"}, 0, "", ""},
		{"list sorted", []string{"work", "ls"}, 0, "b_2\nclaw-server\ncreated-by-dom0\n", ""},
		{"query present", []string{"work", "list", "claw-server"}, 0, "claw-server\n", ""},
		{"query absent", []string{"work", "l", "nope"}, 1, "", ""},
		{"del one", []string{"work", "del", "b_2"}, 0, "", ""},
		{"del absent is fine", []string{"work", "unset", "b_2"}, 0, "", ""},
		{"del two refused", []string{"work", "d", "a", "b"}, 2, "", "qvm-tags: error: unrecognized arguments: b"},
		{"add bad tag", []string{"work", "a", "ok-tag", "bad!"}, 1, "", "qvm-tags: error: disallowed characters"},
		{"add empty tag", []string{"work", "set", ""}, 1, "", "qvm-tags: error: tag cannot be empty"},
		{"add without tag", []string{"work", "add"}, 2, "", "qvm-tags VMNAME add: error: the following arguments are required: tag"},
		{"bad command", []string{"work", "frob"}, 2, "",
			"qvm-tags: error: argument command: invalid choice: 'frob' (choose from 'list', 'ls', 'l', 'add', 'a', 'set', 'del', 'd', 'unset', 'u')"},
		{"unknown VM", []string{"nope", "list"}, 2, "", "qvm-tags: error: no such domain: 'nope'"},
		{"list after partial add", []string{"work"}, 0, "claw-server\ncreated-by-dom0\nok-tag\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAdmin(t, m, "", "qvm-tags", tt.args...)
			if r.code != tt.code || r.out != tt.out {
				t.Fatalf("exit %d stdout %q, want %d %q (stderr %q)", r.code, r.out, tt.code, tt.out, r.err)
			}
			if tt.wantErr != "" && lastLine(r.err) != tt.wantErr {
				t.Errorf("stderr %q, want last line %q", r.err, tt.wantErr)
			}
		})
	}
}

// §3.6.
func TestAdminFeatures(t *testing.T) {
	m := newAdminMachine(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		out     string
		wantErr string
	}{
		{"unset get", []string{"work", "gui"}, 1, "", ""},
		{"set", []string{"work", "supported-service.claw-gateway", "1"}, 0, "", ""},
		{"set empty", []string{"work", "gui", ""}, 0, "", ""},
		{"get", []string{"work", "supported-service.claw-gateway"}, 0, "1\n", ""},
		{"get empty value", []string{"work", "gui"}, 0, "\n", ""},
		{"list", []string{"work"}, 0, "gui                             \nsupported-service.claw-gateway  1\n", ""},
		{"unset", []string{"work", "gui", "--unset"}, 0, "", ""},
		{"unset absent", []string{"work", "gui", "-D"}, 0, "", ""},
		{"get after unset", []string{"work", "gui"}, 1, "", ""},
		{"unset with value", []string{"work", "gui", "1", "--delete"}, 2, "", "qvm-features: error: cannot both set and unset a value"},
		{"unset without name", []string{"work", "--default"}, 2, "", "qvm-features: error: --unset requires a feature"},
		{"bad name", []string{"work", "a/b", "1"}, 1, "", "qubesadmin.exc.ProtocolError: feature name contains illegal characters"},
		{"service name too long", []string{"work", "service." + strings.Repeat("s", 49), "1"}, 1, "",
			"qvm-features: error: Service name must not exceed 48 bytes"},
		{"unknown VM", []string{"nope"}, 2, "", "qvm-features: error: no such domain: 'nope'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAdmin(t, m, "", "qvm-features", tt.args...)
			if r.code != tt.code || r.out != tt.out {
				t.Fatalf("exit %d stdout %q, want %d %q (stderr %q)", r.code, r.out, tt.code, tt.out, r.err)
			}
			if tt.wantErr != "" && lastLine(r.err) != tt.wantErr {
				t.Errorf("stderr %q, want last line %q", r.err, tt.wantErr)
			}
		})
	}
}

// §3.7: qvm-service is sugar for service.NAME features: on is "1", off is "".
func TestAdminService(t *testing.T) {
	m := newAdminMachine(t)
	tests := []struct {
		name    string
		args    []string
		code    int
		out     string
		wantErr string
		feature *string // expected service.claw-gateway value afterwards (nil: unset)
	}{
		{"get unset", []string{"work", "claw-gateway"}, 1, "", "", nil},
		{"enable", []string{"-e", "work", "claw-gateway"}, 0, "", "", ptr("1")},
		{"get on", []string{"work", "claw-gateway"}, 0, "on\n", "", ptr("1")},
		{"disable", []string{"--disable", "work", "claw-gateway"}, 0, "", "", ptr("")},
		{"get off", []string{"work", "claw-gateway"}, 0, "off\n", "", ptr("")},
		{"value on", []string{"work", "claw-gateway", "on"}, 0, "", "", ptr("1")},
		{"value no", []string{"work", "claw-gateway", "NO"}, 0, "", "", ptr("")},
		{"value true", []string{"work", "claw-gateway", "true"}, 0, "", "", ptr("1")},
		{"value 0", []string{"work", "claw-gateway", "0"}, 0, "", "", ptr("")},
		{"value yes", []string{"work", "claw-gateway", "yes"}, 0, "", "", ptr("1")},
		{"list", []string{"work", "-l"}, 0, "claw-gateway  on\n", "", ptr("1")},
		{"bad value", []string{"work", "claw-gateway", "maybe"}, 1, "", "qvm-service: error: Invalid literal for boolean value: 'maybe'", ptr("1")},
		{"name too long", []string{"work", strings.Repeat("s", 49), "on"}, 1, "", "qvm-service: error: Service name must not exceed 48 bytes", ptr("1")},
		{"dot name", []string{"work", ".", "on"}, 1, "", `qvm-service: error: Service name cannot be "." or ".."`, ptr("1")},
		{"unset with value", []string{"-D", "work", "claw-gateway", "on"}, 2, "", "qvm-service: error: cannot both set and unset a value", ptr("1")},
		{"unset", []string{"--unset", "work", "claw-gateway"}, 0, "", "", nil},
		{"unknown VM", []string{"nope", "x"}, 2, "", "qvm-service: error: no such domain: 'nope'", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAdmin(t, m, "", "qvm-service", tt.args...)
			if r.code != tt.code || r.out != tt.out {
				t.Fatalf("exit %d stdout %q, want %d %q (stderr %q)", r.code, r.out, tt.code, tt.out, r.err)
			}
			if tt.wantErr != "" && lastLine(r.err) != tt.wantErr {
				t.Errorf("stderr %q, want last line %q", r.err, tt.wantErr)
			}
			st, err := m.Load()
			if err != nil {
				t.Fatal(err)
			}
			v, ok := st.Domain("work").Features["service.claw-gateway"]
			switch {
			case tt.feature == nil && ok:
				t.Errorf("feature set to %q, want unset", v)
			case tt.feature != nil && (!ok || v != *tt.feature):
				t.Errorf("feature = %q (set %v), want %q", v, ok, *tt.feature)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// §3.2: exit 0 all match, 1 none match or any missing, 3 some match; paused
// counts as running.
func TestAdminCheck(t *testing.T) {
	m := newAdminMachine(t)
	setPower(t, m, "sys-net", Running)
	setPower(t, m, "vault", Paused)
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string // exact stderr
	}{
		{"exists", []string{"work"}, 0, "qvm-check: work: exists\n"},
		{"missing", []string{"nope"}, 1, "qvm-check: nope: non-existent!\n"},
		{"missing quiet still warns", []string{"-q", "nope"}, 1, "nope: non-existent!\n"},
		{"exists and missing", []string{"work", "nope"}, 1, "qvm-check: work: exists\nqvm-check: nope: non-existent!\n"},
		{"halted not running", []string{"--running", "work"}, 1, "qvm-check: None of qubes: running\n"},
		{"running", []string{"--running", "sys-net"}, 0, "qvm-check: sys-net: running\n"},
		{"paused counts as running", []string{"--running", "vault"}, 0, "qvm-check: vault: running\n"},
		{"paused", []string{"--paused", "vault"}, 0, "qvm-check: vault: paused\n"},
		{"running not paused", []string{"--paused", "sys-net"}, 1, "qvm-check: None of qubes: paused\n"},
		{"some running", []string{"--running", "work", "sys-net"}, 3, "qvm-check: sys-net: running\n"},
		{"quiet", []string{"--quiet", "--running", "work", "sys-net"}, 3, ""},
		{"running but one missing", []string{"--running", "sys-net", "nope"}, 1, "qvm-check: sys-net: running\nqvm-check: nope: non-existent!\n"},
		{"template", []string{"--template", "fedora-41"}, 0, "qvm-check: fedora-41: template\n"},
		{"networked", []string{"--networked", "work", "sys-net", "fedora-41"}, 3, "qvm-check: sys-net: networked\nqvm-check: work: networked\n"},
		{"all running", []string{"--all", "--running", "--exclude", "work", "--exclude", "fedora-41"}, 0,
			"qvm-check: sys-net: running\nqvm-check: vault: running\n"},
		{"all some running", []string{"--all", "--running"}, 3, "qvm-check: sys-net: running\nqvm-check: vault: running\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAdmin(t, m, "", "qvm-check", tt.args...)
			if r.code != tt.code || r.err != tt.wantErr || r.out != "" {
				t.Errorf("exit %d stderr %q stdout %q, want %d %q", r.code, r.err, r.out, tt.code, tt.wantErr)
			}
		})
	}
	for _, args := range [][]string{nil, {"--exclude", "work", "sys-net"}} {
		if r := runAdmin(t, m, "", "qvm-check", args...); r.code != 2 || !strings.HasPrefix(r.err, "usage: qvm-check") {
			t.Errorf("qvm-check %v: %+v", args, r)
		}
	}
}

func TestAdminRemove(t *testing.T) {
	m := newAdminMachine(t)
	mustRun(t, m, "qvm-create", "-l", "green", "scratch")
	mustRun(t, m, "qvm-create", "-l", "green", "scratch2")
	mustRun(t, m, "qvm-create", "-l", "green", "busy")

	// Without -f it asks; no answer (EOF) or anything but y/Y cancels.
	for _, in := range []string{"", "n\n", "yes\n"} {
		r := runAdmin(t, m, in, "qvm-remove", "scratch")
		if r.code != 1 || r.out != "  scratch\nAre you sure? [y/N] " ||
			r.err != "This will completely remove the selected VM(s)...\nRemove cancelled.\n" {
			t.Errorf("answer %q: %+v", in, r)
		}
	}
	if !exists(m, "scratch", "/home") {
		t.Fatal("cancelled removal removed files")
	}
	if r := runAdmin(t, m, "y\n", "qvm-remove", "scratch"); r.code != 0 {
		t.Fatalf("confirmed removal: %+v", r)
	}
	if _, err := os.Stat(m.DomainDir("scratch")); !os.IsNotExist(err) {
		t.Errorf("domain directory left behind: %v", err)
	}
	mustRun(t, m, "qvm-remove", "-f", "scratch2")

	setPower(t, m, "busy", Running)
	if r := runAdmin(t, m, "", "qvm-remove", "--force", "busy"); r.code != 1 || r.err != "qvm-remove: error: Domain is not powered off: 'busy'\n" {
		t.Errorf("running VM: %+v", r)
	}
	// A template with AppVMs, a global default and an explicit netvm are
	// all references that forbid the removal.
	r := runAdmin(t, m, "", "qvm-remove", "-f", "fedora-41")
	wantErr := "VM fedora-41 cannot be removed. It is in use as:\n" +
		" - global property default_template\n" +
		" - template for busy\n - template for sys-net\n - template for work\n" +
		"qvm-remove: error: Domain is in use: 'fedora-41';  see 'journalctl -u qubesd -e' in dom0 for details\n"
	if r.code != 1 || r.err != wantErr {
		t.Errorf("template in use: exit %d stderr\n%s\nwant\n%s", r.code, r.err, wantErr)
	}
	if r := runAdmin(t, m, "", "qvm-remove", "-f", "nope"); r.code != 2 || lastLine(r.err) != "qvm-remove: error: no such domain: 'nope'" {
		t.Errorf("unknown VM: %+v", r)
	}
	if r := runAdmin(t, m, "", "qvm-remove", "-f", "dom0"); r.code != 1 || lastLine(r.err) != "qvm-remove: error: 'dom0' cannot be removed" {
		t.Errorf("dom0: %+v", r)
	}
	st, err := m.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Domain("scratch") != nil || st.Domain("scratch2") != nil || st.Domain("busy") == nil || st.Domain("fedora-41") == nil {
		t.Errorf("domains after removals: %v", st.Names())
	}
}

func TestAdminQubesPrefs(t *testing.T) {
	m := newAdminMachine(t)
	if got := mustRun(t, m, "qubes-prefs", "default_template"); got != "fedora-41\n" {
		t.Errorf("default_template = %q", got)
	}
	if r := runAdmin(t, m, "", "qubes-prefs", "default_template", "work"); r.code != 1 ||
		lastLine(r.err) != "qubes-prefs: error: wrong VM class: domains['work'] is of type AppVM and not TemplateVM" {
		t.Errorf("default_template work: %+v", r)
	}
	// Only default_dispvm gets the none → '' translation in qvm_prefs.py.
	if r := runAdmin(t, m, "", "qubes-prefs", "default_netvm", "none"); r.code != 1 ||
		lastLine(r.err) != "qubes-prefs: error: VM name cannot be 'none' nor 'default'" {
		t.Errorf("default_netvm none: %+v", r)
	}
	mustRun(t, m, "qubes-prefs", "default_netvm", "")
	if got := mustRun(t, m, "qvm-prefs", "work", "netvm"); got != "" {
		t.Errorf("work netvm after default_netvm '' = %q", got)
	}
}
