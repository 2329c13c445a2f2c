package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkGolden compares got with testdata/admin/NAME.golden; -update rewrites it.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "admin", name+".golden")
	if updatingGolden() {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/sim -run Golden -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, p, got, want)
	}
}

// goldenMachine is newAdminMachine with fixed UUIDs and varied state, so the
// listings are reproducible and show every marker and power state.
func goldenMachine(t *testing.T) *Machine {
	m := newAdminMachine(t)
	mustRun(t, m, "qvm-prefs", "work", "memory", "800")
	mustRun(t, m, "qvm-prefs", "work", "autostart", "True")
	mustRun(t, m, "qvm-prefs", "work", "default_user", "claw")
	mustRun(t, m, "qvm-prefs", "vault", "netvm", "none")
	mustRun(t, m, "qvm-prefs", "work", "vcpus", "4")
	err := m.Update(func(st *State) error {
		for i, n := range st.Names() {
			if n != Dom0 {
				st.Domains[n].UUID = strings.Replace("00000000-0000-4000-8000-00000000000X", "X", string(rune('0'+i)), 1)
			}
		}
		st.Domains["sys-net"].Power = Running
		st.Domains["vault"].Power = Paused
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAdminGolden(t *testing.T) {
	m := goldenMachine(t)
	tests := []struct {
		golden string
		tool   string
		args   []string
	}{
		{"qvm-prefs-work", "qvm-prefs", []string{"work"}},
		{"qvm-prefs-work-hide-default", "qvm-prefs", []string{"--hide-default", "work"}},
		{"qvm-prefs-vault", "qvm-prefs", []string{"vault"}},
		{"qvm-prefs-fedora-41", "qvm-prefs", []string{"fedora-41"}},
		{"qvm-prefs-dom0", "qvm-prefs", []string{"dom0"}},
		{"qubes-prefs", "qubes-prefs", nil},
		{"qvm-ls", "qvm-ls", nil},
		{"qvm-ls-raw-list", "qvm-ls", []string{"--raw-list"}},
		{"qvm-ls-raw-data", "qvm-ls", []string{"--raw-data", "--fields", "name,state,class,label,template,netvm,flags,memory"}},
		{"qvm-ls-running", "qvm-ls", []string{"--running", "--paused", "--no-spinner"}},
		{"qvm-ls-class", "qvm-ls", []string{"--class", "AppVM", "StandaloneVM", "-O", "name,qid,vcpus", "--sort", "vcpus", "--reverse"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			r := runAdmin(t, m, "", tt.tool, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.err)
			}
			checkGolden(t, tt.golden, r.out)
		})
	}
	// On a non-TTY stderr qvm-ls' spinner prints its prompt and dots.
	r := runAdmin(t, m, "", "qvm-ls")
	if !strings.HasPrefix(r.err, "please wait... .") || !strings.HasSuffix(r.err, ".\n") {
		t.Errorf("qvm-ls stderr %q, want the non-TTY spinner", r.err)
	}
	if r := runAdmin(t, m, "", "qvm-ls", "--raw-list"); r.err != "" {
		t.Errorf("qvm-ls --raw-list stderr %q, want none", r.err)
	}
	if r := runAdmin(t, m, "", "qvm-ls", "nope"); r.code != 2 || lastLine(r.err) != "qvm-ls: error: no such domain: 'nope'" {
		t.Errorf("qvm-ls nope: %+v", r)
	}
}
