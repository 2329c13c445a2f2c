package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testSys is the system_info used by most tests.
var testSys = System{
	"dom0":         {Name: "dom0", Class: "AdminVM", Running: true},
	"work":         {Name: "work", Class: "AppVM", Tags: []string{"claw-client"}, DefaultDispVM: "default-dvm", Running: true},
	"claw-server":  {Name: "claw-server", Class: "AppVM", Tags: []string{"claw-server"}},
	"claw-server2": {Name: "claw-server2", Class: "AppVM", Tags: []string{"claw-server"}, Running: true},
	"claw-admin":   {Name: "claw-admin", Class: "AppVM", Running: true},
	"managed":      {Name: "managed", Class: "AppVM", Tags: []string{"created-by-claw-admin"}},
	"default-dvm":  {Name: "default-dvm", Class: "AppVM", TemplateForDispVMs: true, Tags: []string{"dvm-ok"}},
	"other-dvm":    {Name: "other-dvm", Class: "AppVM", TemplateForDispVMs: true},
	"fedora":       {Name: "fedora", Class: "TemplateVM"},
	"nodisp":       {Name: "nodisp", Class: "AppVM"},
	"disp1":        {Name: "disp1", Class: "DispVM"},
}

func loadFixture(t *testing.T) *Policy {
	t.Helper()
	// /run before /etc, as qrexec does (qubes.md §1.1).
	p, err := LoadDirs("testdata/run", "testdata/etc")
	if err != nil {
		t.Fatalf("LoadDirs: %v", err)
	}
	return p
}

func TestEvaluate(t *testing.T) {
	p := loadFixture(t)
	etc := func(f string) string { return filepath.Join("testdata/etc", f) }
	tests := []struct {
		name string
		req  Request
		sys  System // testSys if nil
		want Result // File/Rule are checked only when set
	}{
		// §1.5: tags on both sides, first match wins.
		{"tag to tag", Request{"qubes.ConnectTCP", "32125", "work", "claw-server"}, nil,
			Result{Action: Allow, Target: "claw-server", Autostart: true, File: etc("50-claw.policy"), Line: 2}},
		// §1.2: autostart=no refuses a halted target; allow's notify defaults to no.
		{"autostart=no halted", Request{"qubes.ConnectTCP", "18789", "work", "claw-server"}, nil,
			Result{Action: Deny, Line: 3, Reason: "target claw-server is denied because it would require autostart"}},
		{"autostart=no running", Request{"qubes.ConnectTCP", "18789", "work", "claw-server2"}, nil,
			Result{Action: Allow, Target: "claw-server2", Autostart: false, Line: 3}},
		// §1.2/§1.3: @default target, redirected by target=; "" and @default are the same.
		{"default redirected empty", Request{"qubes.ConnectTCP", "32125", "claw-admin", ""}, nil,
			Result{Action: Allow, Target: "claw-server", Autostart: true, Line: 4}},
		{"default redirected keyword", Request{"qubes.ConnectTCP", "32125", "claw-admin", "@default"}, nil,
			Result{Action: Allow, Target: "claw-server", Autostart: true, Line: 4}},
		// §1.2: redirect keeps the action even though a later rule denies the new target.
		{"deny notify=no", Request{"qubes.ConnectTCP", "32125", "nodisp", "claw-server"}, nil,
			Result{Action: Deny, Notify: false, Line: 5, Reason: "denied by policy " + etc("50-claw.policy") + ":5"}},
		// §1.2: deny notifies by default.
		{"default deny", Request{"qubes.ConnectTCP", "22", "work", "claw-admin"}, nil,
			Result{Action: Deny, Notify: true, File: etc("90-default.policy"), Line: 1, Reason: "denied by policy " + etc("90-default.policy") + ":1"}},
		// §1.2: "*" argument also matches a call without argument.
		{"star matches no argument", Request{"qubes.ConnectTCP", "", "work", "claw-server"}, nil,
			Result{Action: Deny, Notify: false, Line: 5}},
		// §1.2: a bare "+" matches exactly the empty argument.
		{"bare plus empty arg", Request{"test.EmptyArg", "", "work", "claw-admin"}, nil,
			Result{Action: Allow, Target: "claw-admin", Autostart: true, Line: 12}},
		{"bare plus other arg", Request{"test.EmptyArg", "x", "work", "claw-admin"}, nil,
			Result{Action: Deny, Notify: true, Reason: "no matching rule found"}},
		// §1.1: the /run copy of a basename shadows the /etc copy.
		{"runtime shadows etc", Request{"test.Shadow", "", "work", "claw-admin"}, nil,
			Result{Action: Allow, Target: "claw-admin", Autostart: true, File: "testdata/run/20-shadowed.policy", Line: 1}},
		{"runtime dir merged", Request{"test.Runtime", "", "work", "claw-admin"}, nil,
			Result{Action: Allow, Target: "claw-admin", User: "root", Autostart: true, File: "testdata/run/10-runtime.policy", Line: 1}},
		// §1.1: first matching rule wins.
		{"first match wins", Request{"test.Order", "", "work", "claw-admin"}, nil,
			Result{Action: Allow, Target: "claw-admin", Autostart: true, File: etc("30-user.policy"), Line: 5}},
		// §1.4: !include, relative to policy.d.
		{"include", Request{"test.Include", "", "work", ""}, nil,
			Result{Action: Allow, Target: "claw-admin", Autostart: true, File: etc("include/user-rules"), Line: 2,
				Rule: "test.Include  *  work  @default  allow target=claw-admin"}},
		// IntendedTarget.verify: a target that does not exist is treated as @default.
		{"unknown target becomes default", Request{"test.Include", "", "work", "ghost"}, nil,
			Result{Action: Allow, Target: "claw-admin", Autostart: true, Line: 2}},
		// §1.4: !include-dir loads *.policy in sorted order only.
		{"include-dir order", Request{"test.DropIn", "", "work", "claw-admin"}, nil,
			Result{Action: Allow, Target: "claw-admin", User: "first", Autostart: true, File: etc("include/dropins/10-a.policy")}},
		// §1.4/§3.9: !include-service, old syntax, nested include relative to policy.d.
		{"include-service nested", Request{"admin.vm.List", "", "work", "dom0"}, nil,
			Result{Action: Allow, Target: "dom0", Autostart: true, File: etc("include/admin-global-rwx"), Line: 1}},
		{"include-service $ and commas", Request{"admin.vm.List", "", "claw-admin", "@adminvm"}, nil,
			Result{Action: Allow, Target: "dom0", Autostart: true, File: etc("include/admin-global-ro"), Line: 3}},
		{"include-service other source", Request{"admin.vm.List", "", "fedora", "dom0"}, nil,
			Result{Action: Deny, Notify: true, Reason: "no matching rule found"}},
		{"include-service $tag", Request{"admin.vm.Start", "", "claw-admin", "managed"}, nil,
			Result{Action: Allow, Target: "dom0", Autostart: true, File: etc("include/admin-local-rwx"), Line: 2}},
		{"include-service * arg", Request{"admin.vm.Start", "foo", "claw-admin", "managed"}, nil,
			Result{Action: Allow, Target: "dom0", Autostart: true, Line: 2}},
		{"$include alias, deny,notify=no", Request{"admin.vm.Start", "", "work", "managed"}, nil,
			Result{Action: Deny, Notify: false, File: etc("include/admin-local-extra"), Line: 1}},
		// §1.3: @dispvm resolves to the caller's default_dispvm.
		{"dispvm", Request{"qubes.OpenInVM", "", "work", "@dispvm"}, nil,
			Result{Action: Allow, Target: "@dispvm:default-dvm", Autostart: true, Line: 3}},
		{"dispvm without default", Request{"qubes.OpenInVM", "", "nodisp", "@dispvm"}, nil,
			Result{Action: Deny, Notify: true, Line: 3,
				Reason: "policy define 'allow' action to @dispvm at " + etc("90-default.policy") + ":3 but no DispVM base is set for this VM"}},
		{"dispvm tag", Request{"qubes.OpenInVM", "", "work", "@dispvm:default-dvm"}, nil,
			Result{Action: Allow, Target: "@dispvm:default-dvm", Autostart: true, Line: 4}},
		{"dispvm not a template", Request{"qubes.OpenInVM", "", "work", "@dispvm:nodisp"}, nil,
			Result{Action: Deny, Notify: true, Reason: "not a template for dispvm: nodisp"}},
		// ask is returned to the caller; default_target=@dispvm is expanded.
		{"ask with default", Request{"qubes.OpenInVM", "", "work", "@dispvm:other-dvm"}, nil,
			Result{Action: Ask, Target: "@dispvm:default-dvm", Autostart: true, Line: 5,
				Targets: []string{"@dispvm:default-dvm", "@dispvm:other-dvm", "claw-admin", "claw-server", "claw-server2",
					"default-dvm", "disp1", "fedora", "managed", "nodisp", "other-dvm"}}},
		{"ask no autostart filters", Request{"test.AskNoAuto", "", "work", "claw-admin"}, nil,
			Result{Action: Ask, Targets: []string{"claw-admin", "claw-server2"}, Line: 13}},
		{"ask target=", Request{"test.AskRedirect", "", "work", ""}, nil,
			Result{Action: Ask, Target: "claw-server", Targets: []string{"claw-server"}, Autostart: true, Line: 14}},
		{"ask default not a choice", Request{"test.AskBadDefault", "", "work", "claw-server"}, nil,
			Result{Action: Ask, Targets: []string{"claw-admin"}, Autostart: true, Line: 15}},
		{"ask earlier deny removes", Request{"test.AskDeny", "", "work", "claw-server2"}, nil,
			Result{Action: Ask, Targets: []string{"claw-server2"}, Autostart: true, Line: 17}},
		// §1.3: dom0 and @adminvm are the same, as target and source.
		{"dom0 target", Request{"qubes.GetDate", "", "work", "dom0"}, nil,
			Result{Action: Allow, Target: "dom0", Autostart: true, Line: 6}},
		{"adminvm target", Request{"qubes.GetDate", "", "work", "@adminvm"}, nil,
			Result{Action: Allow, Target: "dom0", Autostart: true, Line: 6}},
		{"dom0 source", Request{"qubes.WaitForSession", "", "dom0", "work"}, nil,
			Result{Action: Allow, Target: "work", Autostart: true, Line: 7}},
		{"adminvm source", Request{"qubes.WaitForSession", "", "@adminvm", "work"}, nil,
			Result{Action: Allow, Target: "work", Autostart: true, Line: 7}},
		// §1.3: @anyvm never matches dom0, neither as source nor as target.
		{"anyvm source not dom0", Request{"qubes.Filecopy", "", "dom0", "work"}, nil,
			Result{Action: Deny, Notify: true, Reason: "no matching rule found"}},
		{"anyvm target not dom0", Request{"qubes.Filecopy", "", "work", "dom0"}, nil,
			Result{Action: Deny, Notify: true, Reason: "no matching rule found"}},
		// §1.3: * matches anything including dom0 and @default.
		{"wildcard dom0 source", Request{"test.Wild", "", "dom0", "work"}, nil,
			Result{Action: Allow, Target: "claw-admin", Autostart: true, Line: 8}},
		{"wildcard dom0 target", Request{"test.Wild", "", "work", "dom0"}, nil,
			Result{Action: Allow, Target: "claw-admin", Autostart: true, Line: 8}},
		{"loopback refused", Request{"test.Wild", "", "claw-admin", ""}, nil,
			Result{Action: Deny, Notify: true, Line: 8, Reason: "loopback qrexec connection not supported"}},
		// §1.3: @type:CLASS and @tag:NAME.
		{"type source", Request{"test.TypeTag", "", "fedora", "dom0"}, nil,
			Result{Action: Allow, Target: "dom0", Autostart: true, Line: 9}},
		{"tag source, user, notify", Request{"test.TypeTag", "", "work", "dom0"}, nil,
			Result{Action: Allow, Target: "dom0", User: "root", Notify: true, Autostart: true, Line: 10}},
		{"neither type nor tag", Request{"test.TypeTag", "", "nodisp", "dom0"}, nil,
			Result{Action: Deny, Notify: true, Reason: "no matching rule found"}},
		// §8: @tag matches dom0 only when dom0 carries the tag.
		{"tag on dom0", Request{"qubes.ConnectTCP", "32125", "dom0", "claw-server"},
			withDom0Tag(testSys, "claw-client"),
			Result{Action: Allow, Target: "claw-server", Autostart: true, Line: 2}},
		{"untagged dom0", Request{"qubes.ConnectTCP", "32125", "dom0", "claw-server"}, nil,
			Result{Action: Deny, Notify: true, Reason: "no matching rule found"}},
		// §1.3: $anyvm outside include-service is a literal name.
		{"dollar is literal", Request{"test.Dollar", "", "work", "claw-admin"}, nil,
			Result{Action: Deny, Notify: true, Reason: "no matching rule found"}},
		// Requests qrexec would never evaluate.
		{"unknown source", Request{"qubes.GetDate", "", "ghost", "dom0"}, nil,
			Result{Action: Deny, Notify: true, Reason: `unknown source domain "ghost"`}},
		{"keyword target", Request{"qubes.GetDate", "", "work", "@anyvm"}, nil,
			Result{Action: Deny, Notify: true, Reason: `invalid target "@anyvm"`}},
		{"service with plus", Request{"qubes.GetDate+x", "", "work", "dom0"}, nil,
			Result{Action: Deny, Notify: true, Reason: `invalid service name "qubes.GetDate+x"`}},
		{"argument with slash", Request{"qubes.GetDate", "a/b", "work", "dom0"}, nil,
			Result{Action: Deny, Notify: true, Reason: `invalid argument "a/b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := tt.sys
			if sys == nil {
				sys = testSys
			}
			got, err := p.Evaluate(tt.req, sys)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			want := tt.want
			if want.File == "" {
				want.File = got.File
			}
			if want.Rule == "" {
				want.Rule = got.Rule
			}
			if want.Line == 0 {
				want.Line = got.Line
			}
			if want.Reason == "" {
				want.Reason = got.Reason
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			// Explain shares the evaluation path and must agree.
			ex := p.Explain(tt.req, sys)
			if ex.Err != nil || !reflect.DeepEqual(ex.Result, got) {
				t.Errorf("Explain result %+v (err %v) differs from Evaluate %+v", ex.Result, ex.Err, got)
			}
		})
	}
}

func withDom0Tag(sys System, tag string) System {
	out := System{}
	for k, v := range sys {
		out[k] = v
	}
	d := out["dom0"]
	d.Tags = append([]string{tag}, d.Tags...)
	out["dom0"] = d
	return out
}

func TestExplain(t *testing.T) {
	p := loadFixture(t)
	ex := p.Explain(Request{"qubes.ConnectTCP", "32125", "nodisp", "claw-admin"}, testSys)
	want := []RuleCheck{
		{File: "testdata/etc/50-claw.policy", Line: 2, Rule: "qubes.ConnectTCP  +32125  @tag:claw-client  @tag:claw-server  allow", Mismatch: "source"},
		{File: "testdata/etc/50-claw.policy", Line: 4, Rule: "qubes.ConnectTCP  +32125  claw-admin        @default          allow target=claw-server", Mismatch: "source"},
		{File: "testdata/etc/50-claw.policy", Line: 5, Rule: "qubes.ConnectTCP  *       @anyvm            @tag:claw-server  deny notify=no", Mismatch: "target"},
		{File: "testdata/etc/90-default.policy", Line: 1, Rule: "qubes.ConnectTCP  *  @anyvm  @anyvm                 deny", Matched: true},
	}
	if !reflect.DeepEqual(ex.Checks, want) {
		t.Errorf("checks:\n%+v\nwant\n%+v", ex.Checks, want)
	}
	if ex.Argument != "+32125" || ex.Source != "nodisp" || ex.Target != "claw-admin" {
		t.Errorf("normalised request = %q %q %q", ex.Argument, ex.Source, ex.Target)
	}
	s := ex.String()
	for _, sub := range []string{
		"request: qubes.ConnectTCP+32125 from nodisp to claw-admin",
		"50-claw.policy:2: source does not match",
		"90-default.policy:1: matched",
		"result: deny: denied by policy testdata/etc/90-default.policy:1",
	} {
		if !strings.Contains(s, sub) {
			t.Errorf("explanation lacks %q:\n%s", sub, s)
		}
	}

	ex = p.Explain(Request{"test.Include", "", "work", "ghost"}, testSys)
	if len(ex.Notes) != 1 || !strings.Contains(ex.Notes[0], `"ghost" does not exist`) {
		t.Errorf("notes = %q", ex.Notes)
	}
	ex = p.Explain(Request{"test.AskBadDefault", "", "work", "claw-server"}, testSys)
	if len(ex.Notes) != 1 || !strings.Contains(ex.String(), "default_target=claw-server is not among the choices") {
		t.Errorf("explanation:\n%s", ex.String())
	}
	if !strings.Contains(ex.String(), "result: ask, choices claw-admin") {
		t.Errorf("explanation:\n%s", ex.String())
	}
}

// TestLoadErrors covers configuration errors (§1.1, §1.4): each makes every
// evaluation fail, and LoadDirs still returns a policy that fails closed.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		dirs     []string
		wantIs   error
		wantFile string
		wantLine int
		wantMsg  string
	}{
		{name: "invalid file name", dirs: []string{"testdata/badname"}, wantIs: ErrInvalidFilename, wantMsg: "20-Upper.policy"},
		{name: "invalid name in shadowed dir", dirs: []string{"testdata/etc", "testdata/badname"}, wantIs: ErrInvalidFilename},
		{name: "missing include", dirs: []string{"testdata/missing-include"}, wantFile: "testdata/missing-include/10-x.policy", wantLine: 2, wantMsg: "not a file"},
		{name: "missing include-dir", dirs: []string{"testdata/baddir"}, wantFile: "testdata/baddir/10-x.policy", wantLine: 1, wantMsg: "not a directory"},
		{name: "include cycle", dirs: []string{"testdata/cycle"}, wantMsg: "nested more than"},
		{name: "syntax error", dirs: []string{"testdata/syntax"}, wantFile: "testdata/syntax/10-x.policy", wantLine: 3, wantMsg: "invalid action parameter syntax"},
		{name: "missing directory", dirs: []string{"testdata/nonexistent"}, wantIs: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadDirs(tt.dirs...)
			if err == nil {
				t.Fatal("LoadDirs succeeded")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantMsg)
			}
			if tt.wantFile != "" {
				var se *SyntaxError
				if !errors.As(err, &se) || se.File != tt.wantFile || se.Line != tt.wantLine {
					t.Errorf("error %v: want syntax error at %s:%d", err, tt.wantFile, tt.wantLine)
				}
			}
			if p == nil || p.Err() == nil {
				t.Fatal("LoadDirs did not return a failing policy")
			}
			res, eerr := p.Evaluate(Request{"test.X", "", "work", "claw-admin"}, testSys)
			if !errors.Is(eerr, err) || res.Action != Deny {
				t.Errorf("Evaluate = %+v, %v; want deny with the load error", res, eerr)
			}
			if ex := p.Explain(Request{"test.X", "", "work", "claw-admin"}, testSys); ex.Err == nil ||
				!strings.Contains(ex.String(), "every call is refused") {
				t.Errorf("Explain does not report the configuration error:\n%s", ex.String())
			}
		})
	}

	var nilPolicy *Policy
	if _, err := nilPolicy.Evaluate(Request{"a", "", "work", ""}, testSys); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("nil policy: %v", err)
	}
}

func TestLoadIgnoresNonPolicyFiles(t *testing.T) {
	// README, .hidden.policy, a directory named subdir.policy and
	// include/dropins/notes.txt all contain garbage; loading must not see them.
	p := loadFixture(t)
	if p.Len() == 0 {
		t.Fatal("no rules loaded")
	}
}

// TestSyntax is the §1.2–§1.4 grammar, one case per rule of the format.
func TestSyntax(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "include"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"include/ok":        "svc * @anyvm @anyvm allow\n",
		"include/old-ok":    "@anyvm @anyvm allow,target=dom0\n",
		"include/old-short": "@anyvm @anyvm\n",
		"include/old-dir":   "!include-dir include\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		text    string
		wantErr string // "" = must parse
		line    int
	}{
		{"minimal", "svc * @anyvm @anyvm allow", "", 0},
		{"comments and blanks", "# c\n\n   # indented comment\n\t\nsvc * @anyvm @anyvm deny", "", 0},
		{"crlf", "svc * @anyvm @anyvm deny\r\n", "", 0},
		{"empty argument", "svc + @anyvm @anyvm allow", "", 0},
		{"wildcards", "* * * * deny", "", 0},
		{"ask default without target", "svc * @anyvm @default ask", "", 0},
		{"deny default", "svc * @anyvm @default deny", "", 0},
		{"all ask params", "svc +a @anyvm @anyvm ask target=dom0 default_target=@dispvm user=u notify=yes autostart=no", "", 0},
		{"all allow params", "svc +a.b-c_D @anyvm @anyvm allow target=@dispvm:dvm user=root notify=no autostart=yes", "", 0},
		{"dispvm tokens", "svc * @anyvm @dispvm:@tag:t allow\nsvc * @dispvm:x @dispvm ask", "", 0},
		{"uuid literal", "svc * uuid:00000000-0000-0000-0000-000000000000 @anyvm allow", "", 0},
		{"dollar literal", "svc * $anyvm $tag:x allow", "", 0},
		{"empty user", "svc * @anyvm @anyvm allow user=", "", 0},
		{"compat", "!compat-4.0", "", 0},
		{"include", "!include include/ok", "", 0},
		{"include-service", "!include-service svc +arg include/old-ok", "", 0},
		{"include-service wildcard", "!include-service * * include/old-ok", "", 0},

		{"too few fields", "svc * @anyvm @anyvm", "wrong number of fields", 1},
		{"service plus", "# x\nsvc+arg * @anyvm @anyvm allow", "invalid characters", 2},
		{"service slash", "a/b * @anyvm @anyvm allow", "invalid characters", 1},
		{"argument without plus", "svc 22 @anyvm @anyvm allow", "does not start with +", 1},
		{"argument charset", "svc +a/b @anyvm @anyvm allow", "invalid characters", 1},
		{"star service with argument", "* +22 @anyvm @anyvm allow", "only * argument allowed for * service", 1},
		{"bad action", "svc * @anyvm @anyvm permit", "invalid action", 1},
		{"deny target", "svc * @anyvm @anyvm deny target=dom0", `invalid parameter "target" for action deny`, 1},
		{"deny user", "svc * @anyvm @anyvm deny user=root", "invalid parameter", 1},
		{"allow default_target", "svc * @anyvm @anyvm allow default_target=dom0", "invalid parameter", 1},
		{"unknown param", "svc * @anyvm @anyvm allow foo=bar", "invalid parameter", 1},
		{"bool true", "svc * @anyvm @anyvm allow notify=true", "can be only 'yes' or 'no'", 1},
		{"bool 1", "svc * @anyvm @anyvm ask autostart=1", "can be only 'yes' or 'no'", 1},
		{"bool case", "svc * @anyvm @anyvm deny notify=Yes", "can be only 'yes' or 'no'", 1},
		{"duplicate param", "svc * @anyvm @anyvm allow user=a user=b", "parameter given twice", 1},
		{"param without =", "svc * @anyvm @anyvm allow user", "invalid action parameter syntax", 1},
		{"inline comment", "svc * @anyvm @anyvm allow # no inline comments", "invalid action parameter syntax", 1},
		{"comma separator", "svc * @anyvm @anyvm allow user=a,notify=yes", "", 0}, // one user value "a,notify=yes"
		{"default allow without target", "svc * @anyvm @default allow", "must specify target=", 1},
		{"default source", "svc * @default @anyvm allow", "invalid source token", 1},
		{"dispvm source", "svc * @dispvm @anyvm allow", "invalid source token", 1},
		{"anyvm redirect", "svc * @anyvm @anyvm allow target=@anyvm", "invalid redirect token", 1},
		{"tag redirect", "svc * @anyvm @anyvm allow target=@tag:x", "invalid redirect token", 1},
		{"wildcard redirect", "svc * @anyvm @anyvm allow target=*", "invalid redirect token", 1},
		{"default redirect", "svc * @anyvm @anyvm ask default_target=@default", "invalid redirect token", 1},
		{"empty tag", "svc * @tag: @anyvm allow", "invalid empty @tag: token", 1},
		{"empty dispvm tag", "svc * @anyvm @dispvm:@tag: allow", "invalid empty @dispvm:@tag: token", 1},
		{"unknown keyword", "svc * @foo @anyvm allow", "invalid source token", 1},
		{"dispvm keyword value", "svc * @anyvm @dispvm:@foo allow", "invalid target token", 1},
		{"unknown directive", "!includex foo", "invalid directive", 1},
		{"include arity", "!include a b", "invalid number of params", 1},
		{"include-service arity", "!include-service svc include/ok", "invalid number of params", 1},
		{"compat arity", "!compat-4.0 x", "invalid number of params", 1},
		{"missing include", "\n!include include/nope", "not a file", 2},
		{"include a directory", "!include include", "not a file", 1},
		{"missing include-dir", "!include-dir nope", "not a directory", 1},
		{"include-service bad service", "!include-service a+b * include/ok", "invalid characters", 1},
		{"include-service bad argument", "!include-service svc 22 include/ok", "does not start with +", 1},
		{"old syntax too short", "!include-service svc * include/old-short", "wrong number of fields", 1},
		{"old syntax no include-dir", "!include-service svc * include/old-dir", "invalid directive", 1},
		{"invalid utf8", "svc * \xff @anyvm allow", "invalid UTF-8", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(dir, "30-test.policy")
			p, err := Parse(name, strings.NewReader(tt.text))
			if tt.wantErr == "" {
				if err != nil || p == nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q lacks %q", err, tt.wantErr)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if tt.line != 0 && se.Line != tt.line {
				t.Errorf("line = %d, want %d", se.Line, tt.line)
			}
			if !strings.HasPrefix(err.Error(), "policy syntax error at ") {
				t.Errorf("error %q does not name file and line", err)
			}
		})
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Deny: "deny", Allow: "allow", Ask: "ask", Action(7): "action(7)"} {
		if got := a.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(a), got, want)
		}
	}
}

// FuzzParse checks that no input makes the parser, or evaluation of what it
// accepts, panic.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"svc * @anyvm @anyvm allow\n",
		"* * * * deny notify=no\n",
		"qubes.ConnectTCP +22 @tag:a @dispvm:@tag:b ask default_target=@dispvm autostart=no\n",
		"!include-service svc +a old\n",
		"svc + dom0 @default allow target=@dispvm:x user=root\n",
		"!include-dir .\n!compat-4.0\n",
	} {
		f.Add([]byte(seed))
	}
	for _, fx := range []string{"testdata/etc/90-default.policy", "testdata/etc/50-claw.policy", "testdata/etc/include/admin-local-rwx"} {
		if b, err := os.ReadFile(fx); err == nil {
			f.Add(b)
		}
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "old"), []byte("$anyvm $anyvm allow,target=dom0\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(filepath.Join(dir, "fuzz.policy"), bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, req := range []Request{
			{"svc", "", "work", ""},
			{"qubes.ConnectTCP", "22", "work", "@dispvm"},
			{"svc", "a", "dom0", "claw-admin"},
			{"svc", "", "work", "@dispvm:default-dvm"},
		} {
			_, _ = p.Evaluate(req, testSys)
			_ = p.Explain(req, testSys).String()
		}
	})
}
