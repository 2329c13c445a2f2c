package pkgspec

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const repoRoot = "../.."

// everything pretends every binary exists, to check the complete layout.
func everything(string) bool { return true }

// TestEntries checks each entry's fields against its kind, for the complete
// layout of every package.
func TestEntries(t *testing.T) {
	for _, p := range All() {
		bins := map[string]bool{}
		for _, b := range p.Binaries() {
			bins[b] = true
		}
		for _, e := range p.Entries {
			where := p.Name + " " + e.Dest
			if !path.IsAbs(e.Dest) || path.Clean(e.Dest) != e.Dest {
				t.Errorf("%s: destination must be absolute and clean", where)
			}
			if e.Kind != Symlink && e.Mode == 0 {
				t.Errorf("%s: no explicit mode", where)
			}
			if e.Mode&^0o7777 != 0 {
				t.Errorf("%s: mode %o has type bits", where, e.Mode)
			}
			switch e.Kind {
			case Dir, Ghost:
				if e.Source != "" {
					t.Errorf("%s: %s with a source", where, e.Kind)
				}
			default:
				if e.Source == "" {
					t.Errorf("%s: %s without a source", where, e.Kind)
				}
			}
			if e.Kind == Binary && e.With != "" {
				t.Errorf("%s: a binary belongs to itself, not to %s", where, e.With)
			}
			if e.Kind != Binary && e.With != "" && !bins[e.With] {
				t.Errorf("%s: belongs to %s, which is not a binary of this package", where, e.With)
			}
			if e.Only != "" && !p.Has(e.Only) {
				t.Errorf("%s: limited to %s, which the package is not built as", where, e.Only)
			}
		}
	}
}

// TestPackages checks package-level metadata.
func TestPackages(t *testing.T) {
	names := map[string]bool{}
	for _, p := range All() {
		if names[p.Name] {
			t.Errorf("%s declared twice", p.Name)
		}
		names[p.Name] = true
		if p.Summary == "" || p.Description == "" || len(p.Formats) == 0 {
			t.Errorf("%s: summary, description and formats are required", p.Name)
		}
		if strings.Contains(p.Summary, "\n") {
			t.Errorf("%s: summary must be one line", p.Name)
		}
		if p.Side == Dom0 && (len(p.Formats) != 1 || p.Formats[0] != RPM) {
			t.Errorf("%s: dom0 is Fedora, so dom0 packages are RPM only", p.Name)
		}
		if len(p.Binaries()) == 0 {
			t.Errorf("%s: ships no binary", p.Name)
		}
		for _, group := range [][]Dep{p.Depends, p.Obsoletes, p.Conflicts, p.Provides} {
			for _, d := range group {
				if d.Name == "" || d.Why == "" {
					t.Errorf("%s: relation %q needs a name and a reason", p.Name, d.Name)
				}
				if strings.HasPrefix(d.Name, "/") && d.Only != RPM {
					t.Errorf("%s: file dependency %s means nothing to pacman; limit it to rpm", p.Name, d.Name)
				}
			}
		}
		for f := range p.Scripts {
			if !p.Has(f) {
				t.Errorf("%s: scripts for %s, which it is not built as", p.Name, f)
			}
		}
	}
}

// TestNoSharedPaths keeps our packages from conflicting with each other: two
// packages must not ship the same path (directories included).
func TestNoSharedPaths(t *testing.T) {
	for _, f := range []Format{RPM, Arch} {
		owner := map[string]string{}
		for _, p := range All() {
			if !p.Has(f) {
				continue
			}
			for _, e := range p.For(f, everything) {
				if o, ok := owner[e.Dest]; ok {
					t.Errorf("%s: %s shipped by both %s and %s", f, e.Dest, o, p.Name)
				}
				owner[e.Dest] = p.Name
			}
		}
	}
}

// TestParentsOwned: every directory above a shipped path is owned by the same
// package or by the system, so erasing a package leaves no unowned directory
// of ours.
func TestParentsOwned(t *testing.T) {
	for _, p := range All() {
		for _, f := range p.Formats {
			owned := map[string]bool{}
			entries := p.For(f, everything)
			for _, e := range entries {
				if e.Kind == Dir {
					owned[e.Dest] = true
				}
			}
			for _, e := range entries {
				for dir := path.Dir(e.Dest); !SystemDir(dir); dir = path.Dir(dir) {
					if !owned[dir] {
						t.Errorf("%s (%s): %s is in %s, which nobody owns", p.Name, f, e.Dest, dir)
						break
					}
				}
			}
		}
	}
}

// TestForFollowsBinaries: entries of a missing binary stay out.
func TestForFollowsBinaries(t *testing.T) {
	p, ok := Find("qvm-remote-dom0")
	if !ok {
		t.Fatal("qvm-remote-dom0 not declared")
	}
	none := func(string) bool { return false }
	if got := p.For(RPM, none); len(got) != 0 {
		t.Errorf("without the binary, entries %v", got)
	}
	if p.Buildable(none) {
		t.Error("buildable without its binary")
	}
	all := p.For(RPM, everything)
	if !p.Buildable(everything) || len(all) < 3 {
		t.Errorf("with the binary: buildable %v, entries %v", p.Buildable(everything), all)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Dest >= all[i].Dest {
			t.Errorf("entries not sorted by destination: %s before %s", all[i-1].Dest, all[i].Dest)
		}
	}
}

// TestTreeSources checks, for the packages buildable from the committed
// binaries, that every source file and scriptlet exists.
func TestTreeSources(t *testing.T) {
	have := Committed(repoRoot)
	for _, p := range All() {
		if !p.Buildable(have) {
			t.Logf("%s: none of %v in cmd/ yet, not built", p.Name, p.Binaries())
			continue
		}
		for _, f := range p.Formats {
			for _, e := range p.For(f, have) {
				if e.Kind == File || e.Kind == Config {
					if _, err := os.Stat(filepath.Join(repoRoot, e.Source)); err != nil {
						t.Errorf("%s: source of %s: %v", p.Name, e.Dest, err)
					}
				}
			}
			s := p.Scripts[f]
			for _, file := range []string{s.PreInstall, s.PostInstall, s.PreRemove, s.PostRemove, s.PostUpgrade} {
				if file == "" {
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, file)); err != nil {
					t.Errorf("%s: scriptlet: %v", p.Name, err)
				}
			}
		}
	}
}

var (
	// try-restart is allowed: it restarts only a unit that already runs.
	enableRe = regexp.MustCompile(`(^|[^-\w])(enable|preset|start|restart|reenable)\b`)
	reloadRe = regexp.MustCompile(`systemctl\s+daemon-reload`)
)

// code drops comment lines from a shell script.
func code(script string) string {
	var out []string
	for _, l := range strings.Split(script, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDom0Scriptlets: dom0 scriptlets reload systemd after units change and
// never enable or start anything (the executor must stay off until the admin
// confirms; try-restart only restarts what already runs). RPM scriptlets
// must also have /bin/sh, which nfpm does not add by itself.
func TestDom0Scriptlets(t *testing.T) {
	for _, p := range All() {
		s, ok := p.Scripts[RPM]
		if !ok {
			continue
		}
		hasShell := false
		for _, d := range p.Depends {
			hasShell = hasShell || (d.Name == "/bin/sh" && d.Only == RPM)
		}
		if !hasShell {
			t.Errorf("%s: RPM scriptlets without a /bin/sh requirement", p.Name)
		}
		if p.Side != Dom0 {
			continue
		}
		read := func(f string) string {
			b, err := os.ReadFile(filepath.Join(repoRoot, f))
			if err != nil {
				if p.Buildable(Committed(repoRoot)) {
					t.Errorf("%s: %v", p.Name, err)
				}
				return ""
			}
			return code(string(b))
		}
		for _, f := range []string{s.PreInstall, s.PostInstall, s.PreRemove, s.PostRemove} {
			if f == "" {
				continue
			}
			if m := enableRe.FindString(read(f)); m != "" {
				t.Errorf("%s: %s runs %q", p.Name, f, m)
			}
		}
		if s.PostInstall == "" || s.PostRemove == "" {
			t.Errorf("%s: needs %%post and %%postun to reload systemd", p.Name)
			continue
		}
		for _, f := range []string{s.PostInstall, s.PostRemove} {
			if body := read(f); body != "" && !reloadRe.MatchString(body) {
				t.Errorf("%s: %s does not reload systemd", p.Name, f)
			}
		}
	}
}
