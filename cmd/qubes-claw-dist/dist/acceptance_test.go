package dist

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
)

// The acceptance tests install the packages with the real dnf and pacman
// into empty roots. They need root (chroot, mknod, rpm --root) and the
// tools from .ci/deps; make test-packages provides both.

// stubProvides is what an empty root lacks that our packages require.
var stubProvides = []string{
	"systemd", "bash", "qubes-core-agent", "qubes-core-qrexec-vm", "qubes-core-admin-client",
	"qubes-core-qrexec-dom0", "qubes-mgmt-salt-dom0", "qubes-vm-core", "qubes-vm-qrexec",
	"claw-fake-systemd",
}

// fakeSystemctl records its arguments, so the tests see what the scriptlets
// asked of systemd (an "enable" of the dom0 executor must never appear).
const fakeSystemctl = "#!/bin/sh\necho \"$*\" >> /var/log/fake-systemctl.log\n"

// stubs writes claw-stub-sh (busybox as /bin/sh, so scriptlets really run)
// and claw-stub-base (fake systemctl, provides the rest) in both formats.
func stubs(t *testing.T, dir string) {
	t.Helper()
	sysctl := filepath.Join(t.TempDir(), "systemctl")
	if err := os.WriteFile(sysctl, []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	// Group qubes exists in dom0 (qubes-core-dom0 creates it); the policy
	// file is root:qubes, and rpm -V would fail without the group.
	passwd, group := filepath.Join(t.TempDir(), "passwd"), filepath.Join(t.TempDir(), "group")
	must(t, os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(group, []byte("root:x:0:\nqubes:x:98:\n"), 0o644))
	mtime := time.Unix(1700000000, 0).UTC()
	fi := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mtime}
	}
	for _, s := range []struct {
		name     string
		provides []string
		contents files.Contents
	}{
		{"claw-stub-sh", []string{"/bin/sh", "/usr/bin/sh"}, files.Contents{
			{Source: "/bin/busybox", Destination: "/usr/bin/busybox", FileInfo: fi(0o755)},
			{Source: "busybox", Destination: "/usr/bin/sh", Type: files.TypeSymlink},
			{Source: "usr/bin", Destination: "/bin", Type: files.TypeSymlink},
		}},
		{"claw-stub-base", stubProvides, files.Contents{
			{Source: sysctl, Destination: "/usr/sbin/systemctl", FileInfo: fi(0o755)},
			{Source: passwd, Destination: "/etc/passwd", FileInfo: fi(0o644)},
			{Source: group, Destination: "/etc/group", FileInfo: fi(0o644)},
			{Destination: "/var/log", Type: files.TypeDir, FileInfo: fi(0o755)},
		}},
	} {
		for _, f := range []string{"rpm", "archlinux"} {
			info := nfpm.WithDefaults(&nfpm.Info{
				Name: s.name, Arch: "amd64", Platform: "linux", Version: "1.0.0", Release: "1",
				Description: "test stub", MTime: mtime, DisableGlobbing: true,
				Overridables: nfpm.Overridables{
					Provides: s.provides, Contents: s.contents,
					RPM: nfpm.RPM{BuildHost: pkgspec.BuildHost},
				},
			})
			if _, err := write(info, f, dir); err != nil {
				t.Fatalf("stub %s (%s): %v", s.name, f, err)
			}
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("installs packages")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("QUBES_CLAW_REQUIRE_TOOLS") != "" {
			t.Fatal("the packaging acceptance tests need root")
		}
		t.Skip("needs root")
	}
	need(t, "rpm", "dnf", "createrepo_c", "pacman", "chroot")
	if _, err := os.Stat("/bin/busybox"); err != nil {
		need(t, "busybox-static")
	}
}

// emptyRoot returns a directory with /dev/null, which scriptlets redirect to.
func emptyRoot(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(r, "dev"), 0o755))
	run(t, "mknod", "-m", "666", filepath.Join(r, "dev/null"), "c", "1", "3")
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

// exampleV2 is the example at a newer version with a changed default config.
func exampleV2(out string) Options {
	o := exampleOptions(out)
	o.Version = "0.2.0"
	p := examplePkg()
	for i, e := range p.Entries {
		if e.Kind == pkgspec.Config {
			p.Entries[i].Source = "configs/claw-example.v2.yaml"
		}
	}
	o.Packages = []pkgspec.Package{p}
	return o
}

func only(t *testing.T, rs []Result, f pkgspec.Format) []string {
	var out []string
	for _, r := range rs {
		if r.Format == f {
			out = append(out, r.Path)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s package built", f)
	}
	return out
}

func TestDNF(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	repo := t.TempDir()
	stubs(t, repo)
	v1, err := Build(ctx, exampleOptions(repo))
	must(t, err)
	run(t, "createrepo_c", "-q", repo)
	root := emptyRoot(t)
	dnf := func(args ...string) string {
		return run(t, "dnf", append([]string{"-y", "-q", "--installroot=" + root, "--releasever=41",
			"--setopt=reposdir=/nonexistent", "--repofrompath=claw," + repo, "--repo=claw", "--nogpgcheck",
			"--setopt=install_weak_deps=False", "--setopt=clean_requirements_on_remove=False", "--refresh"}, args...)...)
	}
	_ = only(t, v1, pkgspec.RPM)
	dnf("install", "claw-example")
	run(t, "rpm", "--root", root, "-V", "claw-example")
	if got := run(t, "chroot", root, "/usr/bin/claw-example", "--version"); got != "claw-example 0.1.0\n" {
		t.Errorf("installed --version: %q", got)
	}
	if got := readFile(t, filepath.Join(root, "var/lib/claw-example/scriptlets.log")); got != "post 1\n" {
		t.Errorf("scriptlets after install: %q (%%post must run in the root with $1=1)", got)
	}
	if got := readFile(t, filepath.Join(root, "var/log/fake-systemctl.log")); got != "daemon-reload\n" {
		t.Errorf("systemctl calls after install: %q", got)
	}

	conf := filepath.Join(root, "etc/claw-example/claw-example.yaml")
	edited := readFile(t, conf) + "level: debug # local edit\n"
	must(t, os.WriteFile(conf, []byte(edited), 0o640))
	_, err = Build(ctx, exampleV2(repo))
	must(t, err)
	run(t, "createrepo_c", "-q", "--update", repo)
	dnf("upgrade", "claw-example")
	if got := run(t, "chroot", root, "/usr/bin/claw-example", "--version"); got != "claw-example 0.2.0\n" {
		t.Errorf("upgraded --version: %q", got)
	}
	if got := readFile(t, conf); got != edited {
		t.Errorf("upgrade replaced the edited config:\n%s", got)
	}
	if got := readFile(t, conf+".rpmnew"); got != readFile(t, filepath.Join(exampleRoot, "configs/claw-example.v2.yaml")) {
		t.Errorf(".rpmnew is not the new default: %q", got)
	}

	dnf("remove", "claw-example")
	for _, p := range []string{"usr/bin/claw-example", "usr/bin/claw-ex", "usr/lib/systemd/system/claw-example.service", "var/lib/claw-example"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("/%s left after removal", p)
		}
	}
	// The edited config is kept as .rpmsave next to the .rpmnew nobody
	// owns; nothing else of ours stays.
	left, _ := os.ReadDir(filepath.Join(root, "etc/claw-example"))
	for _, e := range left {
		if !strings.HasSuffix(e.Name(), ".rpmsave") && !strings.HasSuffix(e.Name(), ".rpmnew") {
			t.Errorf("/etc/claw-example/%s left after removal", e.Name())
		}
	}
}

func TestPacman(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	dir := t.TempDir()
	stubs(t, dir)
	v1, err := Build(ctx, exampleOptions(filepath.Join(dir, "v1")))
	must(t, err)
	v2, err := Build(ctx, exampleV2(filepath.Join(dir, "v2")))
	must(t, err)
	root := emptyRoot(t)
	must(t, os.MkdirAll(filepath.Join(root, "var/lib/pacman"), 0o755))
	conf := filepath.Join(dir, "pacman.conf")
	must(t, os.WriteFile(conf, []byte("[options]\nArchitecture = x86_64\nSigLevel = Never\nLocalFileSigLevel = Never\n"), 0o644))
	pacman := func(args ...string) string {
		return run(t, "pacman", append([]string{"--config", conf, "--root", root,
			"--dbpath", filepath.Join(root, "var/lib/pacman"), "--noconfirm"}, args...)...)
	}
	stubPkgs, _ := filepath.Glob(filepath.Join(dir, "claw-stub-*.pkg.tar.zst"))
	pacman(append([]string{"-U"}, append(stubPkgs, only(t, v1, pkgspec.Arch)...)...)...)
	pacman("-Qkk", "claw-example")
	if got := run(t, "chroot", root, "/usr/bin/claw-example", "--version"); got != "claw-example 0.1.0\n" {
		t.Errorf("installed --version: %q", got)
	}
	logf := filepath.Join(root, "var/lib/claw-example/scriptlets.log")
	if got := readFile(t, logf); got != "post_install 1:0.1.0-1\n" {
		t.Errorf("scriptlets after install: %q", got)
	}
	cf := filepath.Join(root, "etc/claw-example/claw-example.yaml")
	edited := readFile(t, cf) + "level: debug # local edit\n"
	must(t, os.WriteFile(cf, []byte(edited), 0o640))
	pacman(append([]string{"-U"}, only(t, v2, pkgspec.Arch)...)...)
	if got := run(t, "chroot", root, "/usr/bin/claw-example", "--version"); got != "claw-example 0.2.0\n" {
		t.Errorf("upgraded --version: %q", got)
	}
	if got := readFile(t, cf); got != edited {
		t.Errorf("upgrade replaced the edited config")
	}
	if !exists(cf + ".pacnew") {
		t.Error("no .pacnew after upgrading an edited config")
	}
	if got := readFile(t, logf); got != "post_install 1:0.1.0-1\npost_upgrade 1:0.2.0-1 1:0.1.0-1\n" {
		t.Errorf("scriptlets after upgrade: %q (pacman runs only post_upgrade)", got)
	}
	pacman("-R", "claw-example")
	for _, p := range []string{"usr/bin/claw-example", "usr/bin/claw-ex", "usr/lib/systemd/system/claw-example.service"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("/%s left after removal", p)
		}
	}
	if !exists(cf + ".pacsave") {
		t.Error("the edited config was not saved as .pacsave")
	}
}

// productUpgrade builds the product packages at release 1 into dir/v1 and
// at release 2 into dir/v2, where release 2 ships every config file with a
// changed default, so an upgrade over an edited config must write
// .rpmnew/.pacnew.
func productUpgrade(t *testing.T, dir string) (v1, v2 []Result) {
	t.Helper()
	ctx := context.Background()
	v1, err := Build(ctx, productOptions(filepath.Join(dir, "v1")))
	must(t, err)
	o := productOptions(filepath.Join(dir, "v2"))
	o.Release = "2"
	o.Replace = map[string]string{}
	for _, p := range pkgspec.All() {
		for _, f := range p.Formats {
			for _, e := range p.For(f, pkgspec.Committed(repoRoot)) {
				if e.Kind != pkgspec.Config || o.Replace[e.Source] != "" {
					continue
				}
				changed := filepath.Join(dir, "changed", e.Source)
				must(t, os.MkdirAll(filepath.Dir(changed), 0o755))
				must(t, os.WriteFile(changed, []byte(readFile(t, filepath.Join(repoRoot, e.Source))+"# changed default\n"), 0o644))
				o.Replace[e.Source] = changed
			}
		}
	}
	v2, err = Build(ctx, o)
	must(t, err)
	return v1, v2
}

// repoOf makes a dnf repository of the stubs plus the given packages.
func repoOf(t *testing.T, stubDir string, rs ...[]Result) string {
	t.Helper()
	repo := t.TempDir()
	pkgs, _ := filepath.Glob(filepath.Join(stubDir, "*.rpm"))
	for _, r := range rs {
		for _, x := range r {
			if x.Format == pkgspec.RPM {
				pkgs = append(pkgs, x.Path)
			}
		}
	}
	for _, p := range pkgs {
		must(t, os.Symlink(p, filepath.Join(repo, filepath.Base(p))))
	}
	run(t, "createrepo_c", "-q", repo)
	return repo
}

// dnfIn runs dnf on root with only repo enabled.
func dnfIn(t *testing.T, root, repo string, args ...string) string {
	t.Helper()
	return run(t, "dnf", append([]string{"-y", "-q", "--installroot=" + root, "--releasever=41",
		"--setopt=reposdir=/nonexistent", "--repofrompath=claw," + repo, "--repo=claw", "--nogpgcheck",
		"--setopt=install_weak_deps=False", "--setopt=clean_requirements_on_remove=False", "--refresh"}, args...)...)
}

// pacmanIn returns a pacman runner for an empty root.
func pacmanIn(t *testing.T, root string) func(args ...string) string {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(root, "var/lib/pacman"), 0o755))
	conf := filepath.Join(t.TempDir(), "pacman.conf")
	must(t, os.WriteFile(conf, []byte("[options]\nArchitecture = x86_64\nSigLevel = Never\nLocalFileSigLevel = Never\n"), 0o644))
	return func(args ...string) string {
		return run(t, "pacman", append([]string{"--config", conf, "--root", root,
			"--dbpath", filepath.Join(root, "var/lib/pacman"), "--noconfirm"}, args...)...)
	}
}

func pathOf(t *testing.T, rs []Result, name string, f pkgspec.Format) string {
	t.Helper()
	for _, r := range rs {
		if r.Package == name && r.Format == f {
			return r.Path
		}
	}
	t.Fatalf("no %s package of %s", f, name)
	return ""
}

// TestProductPackages installs every product package built from the
// committed binaries with dnf (and pacman where it has an Arch build) into
// an empty root, runs each binary's --version, edits every config file,
// upgrades to a build with changed defaults (the edits stay, the new
// defaults land beside them), checks that dom0 packages enable nothing, and
// removes the package, leaving no path or directory of ours but the saved
// configs.
func TestProductPackages(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	stubs(t, dir)
	v1, v2 := productUpgrade(t, dir)
	if len(v1) == 0 {
		t.Skip("no product binary committed yet")
	}
	repo1, repo2 := repoOf(t, dir, v1), repoOf(t, dir, v1, v2)
	version := strings.TrimSpace(readFile(t, filepath.Join(repoRoot, "version")))
	have := pkgspec.Committed(repoRoot)
	stubArch, _ := filepath.Glob(filepath.Join(dir, "claw-stub-*.pkg.tar.zst"))
	for _, r := range v1 {
		p, _ := pkgspec.Find(r.Package)
		entries := p.For(r.Format, have)
		t.Run(r.Package+"/"+string(r.Format), func(t *testing.T) {
			root := emptyRoot(t)
			var upgrade, remove func()
			newSuffix, saveSuffix := ".rpmnew", ".rpmsave"
			if r.Format == pkgspec.RPM {
				dnfIn(t, root, repo1, "install", r.Package)
				run(t, "rpm", "--root", root, "-V", r.Package)
				upgrade = func() {
					dnfIn(t, root, repo2, "upgrade", r.Package)
					if got := run(t, "rpm", "--root", root, "-q", "--qf", "%{RELEASE}", r.Package); got != "2" {
						t.Errorf("release after upgrade: %q", got)
					}
				}
				remove = func() { dnfIn(t, root, repo1, "remove", r.Package) }
			} else {
				newSuffix, saveSuffix = ".pacnew", ".pacsave"
				pacman := pacmanIn(t, root)
				pacman(append([]string{"-U"}, append(stubArch, r.Path)...)...)
				pacman("-Qkk", r.Package)
				upgrade = func() {
					pacman("-U", pathOf(t, v2, r.Package, r.Format))
					if got := pacman("-Q", r.Package); !strings.HasSuffix(strings.TrimSpace(got), "-2") {
						t.Errorf("after upgrade: %q", got)
					}
				}
				remove = func() { pacman("-R", r.Package) }
			}
			runAll := func() {
				for _, b := range p.Binaries() {
					if have(b) {
						if out := run(t, "chroot", root, "/usr/bin/"+b, "--version"); !strings.Contains(out, version) {
							t.Errorf("%s --version: %q lacks %s", b, out, version)
						}
					}
				}
			}
			runAll()
			if p.Side == pkgspec.Dom0 {
				noneEnabled(t, root)
			}

			edited := map[string]string{}
			for _, e := range entries {
				if e.Kind == pkgspec.Config {
					f := filepath.Join(root, e.Dest)
					edited[f] = readFile(t, f) + "# local edit\n"
					must(t, os.WriteFile(f, []byte(edited[f]), 0o644))
				}
			}
			upgrade()
			runAll()
			for f, want := range edited {
				if got := readFile(t, f); got != want {
					t.Errorf("upgrade replaced the edited %s", f)
				}
				if !strings.HasSuffix(readFile(t, f+newSuffix), "# changed default\n") {
					t.Errorf("%s%s is not the new default", f, newSuffix)
				}
			}
			if p.Side == pkgspec.Dom0 {
				noneEnabled(t, root)
			}

			remove()
			for f := range edited {
				if !exists(f + saveSuffix) {
					t.Errorf("the edited %s was not saved as %s", f, saveSuffix)
				}
			}
			// Only the admin's files (saved edits, unmerged new defaults) may
			// remain, and the directories holding them: rpm and pacman do not
			// remove a directory that is not empty.
			admin := func(name string) bool {
				return strings.HasSuffix(name, saveSuffix) || strings.HasSuffix(name, newSuffix)
			}
			seen := map[string]bool{}
			for _, e := range entries {
				for d := e.Dest; !pkgspec.SystemDir(d) && !seen[d]; d = path.Dir(d) {
					seen[d] = true
					fi, err := os.Lstat(filepath.Join(root, d))
					if err != nil {
						continue
					}
					if !fi.IsDir() {
						t.Errorf("%s left after removal", d)
						continue
					}
					left, _ := os.ReadDir(filepath.Join(root, d))
					for _, l := range left {
						if !admin(l.Name()) {
							t.Errorf("%s/%s left after removal", d, l.Name())
						}
					}
				}
			}
		})
	}
}

// noneEnabled fails if the package's scriptlets asked systemd to enable or
// start anything, or left an enablement link (qvm-remote-dom0 above all).
func noneEnabled(t *testing.T, root string) {
	t.Helper()
	calls, _ := os.ReadFile(filepath.Join(root, "var/log/fake-systemctl.log"))
	if m := enableCall(string(calls)); m != "" {
		t.Errorf("scriptlets ran systemctl %q", m)
	}
	links, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system/*.wants/*"))
	if len(links) != 0 {
		t.Errorf("units enabled by the package: %v", links)
	}
}

// legacy writes stand-ins of the 1.x Python packages, laid out as their
// specs and PKGBUILD install them (qvm-remote 1.1.0): the dom0 daemon with
// its unit in /etc/systemd/system and /etc/qubes/remote.conf as
// %config(noreplace) 0600, and the VM client.
func legacy(t *testing.T, dir string) {
	t.Helper()
	src := t.TempDir()
	script := filepath.Join(src, "script")
	must(t, os.WriteFile(script, []byte("#!/bin/sh\necho 1.x\n"), 0o755))
	conf := filepath.Join(src, "remote.conf")
	must(t, os.WriteFile(conf, []byte("# qvm-remote 1.x\nQVM_REMOTE_VMS=\"\"\n"), 0o600))
	unit := filepath.Join(src, "unit")
	must(t, os.WriteFile(unit, []byte("[Service]\nExecStart=/usr/bin/qvm-remote-dom0\n"), 0o644))
	mtime := time.Unix(1700000000, 0).UTC()
	fi := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: mtime}
	}
	for _, l := range []struct {
		name     string
		formats  []string
		contents files.Contents
	}{
		{"qvm-remote-dom0", []string{"rpm"}, files.Contents{
			{Source: script, Destination: "/usr/bin/qvm-remote-dom0", FileInfo: fi(0o755)},
			{Source: conf, Destination: "/etc/qubes/remote.conf", Type: files.TypeConfigNoReplace, FileInfo: fi(0o600)},
			{Source: unit, Destination: "/etc/systemd/system/qvm-remote-dom0.service", FileInfo: fi(0o644)},
		}},
		{"qvm-remote", []string{"rpm", "archlinux"}, files.Contents{
			{Source: script, Destination: "/usr/bin/qvm-remote", FileInfo: fi(0o755)},
		}},
	} {
		for _, f := range l.formats {
			info := nfpm.WithDefaults(&nfpm.Info{
				Name: l.name, Arch: "all", Platform: "linux", Version: "1.1.0", Release: "1",
				Description: "qvm-remote 1.x stand-in", MTime: mtime, DisableGlobbing: true,
				Overridables: nfpm.Overridables{Contents: l.contents, RPM: nfpm.RPM{BuildHost: pkgspec.BuildHost}},
			})
			if _, err := write(info, f, dir); err != nil {
				t.Fatalf("1.x %s (%s): %v", l.name, f, err)
			}
		}
	}
}

// TestUpgradeFrom1x upgrades the 1.x Python packages (stand-ins with their
// names, versions and layout) to ours: epoch 1 makes dnf and pacman take
// 0.1.0 as newer than 1.1.0, the admin's /etc/qubes/remote.conf and the
// per-VM keys in /etc/qubes/remote.d survive untouched, the 1.x unit in
// /etc/systemd/system goes, and nothing gets enabled.
func TestUpgradeFrom1x(t *testing.T) {
	needRoot(t)
	have := pkgspec.Committed(repoRoot)
	for _, n := range []string{"qvm-remote-dom0", "qvm-remote"} {
		if p, _ := pkgspec.Find(n); !p.Buildable(have) {
			t.Skipf("%s not built yet", n)
		}
	}
	dir := t.TempDir()
	stubs(t, dir)
	old := filepath.Join(dir, "1.x")
	must(t, os.MkdirAll(old, 0o755))
	legacy(t, old)
	oldRepo := repoOf(t, dir, []Result{
		{Format: pkgspec.RPM, Path: filepath.Join(old, "qvm-remote-dom0-1.1.0-1.noarch.rpm")},
		{Format: pkgspec.RPM, Path: filepath.Join(old, "qvm-remote-1.1.0-1.noarch.rpm")},
	})
	rs, err := Build(context.Background(), Options{Root: repoRoot, Out: filepath.Join(dir, "new"),
		MTime: time.Unix(1700000000, 0).UTC(), Packages: []pkgspec.Package{mustFind(t, "qvm-remote-dom0"), mustFind(t, "qvm-remote")}})
	must(t, err)
	version := strings.TrimSpace(readFile(t, filepath.Join(repoRoot, "version")))

	t.Run("rpm", func(t *testing.T) {
		root := emptyRoot(t)
		dnfIn(t, root, oldRepo, "install", "qvm-remote-dom0", "qvm-remote")
		conf := filepath.Join(root, "etc/qubes/remote.conf")
		edited := "# qvm-remote 1.x\nQVM_REMOTE_VMS=\"work dev\"\n"
		must(t, os.WriteFile(conf, []byte(edited), 0o600))
		keyDir := filepath.Join(root, "etc/qubes/remote.d")
		must(t, os.MkdirAll(keyDir, 0o755))
		key := strings.Repeat("ab", 32) + "\n"
		must(t, os.WriteFile(filepath.Join(keyDir, "work.key"), []byte(key), 0o600))

		// The new packages next to the stubs; the 1.x ones stay visible too,
		// so dnf has to prefer ours by version.
		both := repoOf(t, dir, []Result{
			{Format: pkgspec.RPM, Path: filepath.Join(old, "qvm-remote-dom0-1.1.0-1.noarch.rpm")},
			{Format: pkgspec.RPM, Path: filepath.Join(old, "qvm-remote-1.1.0-1.noarch.rpm")},
		}, rs)
		dnfIn(t, root, both, "upgrade", "qvm-remote-dom0", "qvm-remote")
		for _, n := range []string{"qvm-remote-dom0", "qvm-remote"} {
			if got := run(t, "rpm", "--root", root, "-q", "--qf", "%{EPOCH}:%{VERSION}", n); got != "1:"+version {
				t.Errorf("%s after upgrade: %s, want 1:%s", n, got, version)
			}
			if out := run(t, "chroot", root, "/usr/bin/"+n, "--version"); !strings.Contains(out, version) {
				t.Errorf("%s --version: %q", n, out)
			}
		}
		if got := readFile(t, conf); got != edited {
			t.Errorf("remote.conf after upgrade: %q", got)
		}
		if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("remote.conf mode after upgrade: %v %v", fi, err)
		}
		for _, leftover := range []string{conf + ".rpmsave", conf + ".rpmnew", filepath.Join(root, "etc/systemd/system/qvm-remote-dom0.service")} {
			if exists(leftover) {
				t.Errorf("%s exists after the upgrade", leftover)
			}
		}
		if got := readFile(t, filepath.Join(keyDir, "work.key")); got != key {
			t.Errorf("work.key after upgrade: %q", got)
		}
		if fi, err := os.Stat(keyDir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("key directory after upgrade: %v %v (want 0700)", fi, err)
		}
		if owner := run(t, "rpm", "--root", root, "-qf", "/etc/qubes/remote.conf"); !strings.HasPrefix(owner, "qvm-remote-dom0-0.1.0") {
			t.Errorf("remote.conf owned by %q", owner)
		}
		noneEnabled(t, root)
	})

	t.Run("archlinux", func(t *testing.T) {
		root := emptyRoot(t)
		pacman := pacmanIn(t, root)
		stubArch, _ := filepath.Glob(filepath.Join(dir, "claw-stub-*.pkg.tar.zst"))
		pacman(append([]string{"-U"}, append(stubArch, filepath.Join(old, "qvm-remote-1.1.0-1-any.pkg.tar.zst"))...)...)
		pacman("-U", pathOf(t, rs, "qvm-remote", pkgspec.Arch))
		if got := strings.TrimSpace(pacman("-Q", "qvm-remote")); got != "qvm-remote 1:"+version+"-1" {
			t.Errorf("after upgrade: %q", got)
		}
		if out := run(t, "chroot", root, "/usr/bin/qvm-remote", "--version"); !strings.Contains(out, version) {
			t.Errorf("qvm-remote --version: %q", out)
		}
	})
}

func mustFind(t *testing.T, name string) pkgspec.Package {
	t.Helper()
	p, ok := pkgspec.Find(name)
	if !ok {
		t.Fatalf("no package %s", name)
	}
	return p
}

// enableCall returns the first systemctl call that would enable or start a
// unit; try-restart only restarts what already runs.
func enableCall(log string) string {
	for _, l := range strings.Split(log, "\n") {
		f := strings.Fields(l)
		for _, w := range f {
			switch w {
			case "enable", "reenable", "preset", "start", "restart":
				return l
			}
		}
	}
	return ""
}
