package dist

import (
	"context"
	"os"
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

// TestProductPackages installs every product package that is built from the
// committed binaries with dnf (and pacman where it has an Arch build), runs
// each binary's --version, checks that dom0 scriptlets enable nothing, and
// removes it leaving none of its paths behind.
func TestProductPackages(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	stubs(t, dir)
	o := productOptions(dir)
	rs, err := Build(context.Background(), o)
	must(t, err)
	if len(rs) == 0 {
		t.Skip("no product binary committed yet")
	}
	version := readFile(t, filepath.Join(repoRoot, "version"))
	run(t, "createrepo_c", "-q", dir)
	have := pkgspec.Committed(repoRoot)
	for _, r := range rs {
		p, _ := pkgspec.Find(r.Package)
		t.Run(r.Package+"/"+string(r.Format), func(t *testing.T) {
			root := emptyRoot(t)
			var remove func()
			if r.Format == pkgspec.RPM {
				dnf := func(args ...string) string {
					return run(t, "dnf", append([]string{"-y", "-q", "--installroot=" + root, "--releasever=41",
						"--setopt=reposdir=/nonexistent", "--repofrompath=claw," + dir, "--repo=claw", "--nogpgcheck",
						"--setopt=install_weak_deps=False", "--setopt=clean_requirements_on_remove=False"}, args...)...)
				}
				dnf("install", r.Package)
				run(t, "rpm", "--root", root, "-V", r.Package)
				remove = func() { dnf("remove", r.Package) }
			} else {
				must(t, os.MkdirAll(filepath.Join(root, "var/lib/pacman"), 0o755))
				conf := filepath.Join(root, "pacman.conf")
				must(t, os.WriteFile(conf, []byte("[options]\nArchitecture = x86_64\nSigLevel = Never\nLocalFileSigLevel = Never\n"), 0o644))
				pacman := func(args ...string) string {
					return run(t, "pacman", append([]string{"--config", conf, "--root", root,
						"--dbpath", filepath.Join(root, "var/lib/pacman"), "--noconfirm"}, args...)...)
				}
				stubPkgs, _ := filepath.Glob(filepath.Join(dir, "claw-stub-*.pkg.tar.zst"))
				pacman(append([]string{"-U"}, append(stubPkgs, r.Path)...)...)
				pacman("-Qkk", r.Package)
				remove = func() { pacman("-R", r.Package) }
			}
			for _, b := range p.Binaries() {
				if !have(b) {
					continue
				}
				out := run(t, "chroot", root, "/usr/bin/"+b, "--version")
				if !strings.Contains(out, strings.TrimSpace(version)) {
					t.Errorf("%s --version: %q lacks %s", b, out, strings.TrimSpace(version))
				}
			}
			if p.Side == pkgspec.Dom0 {
				calls, _ := os.ReadFile(filepath.Join(root, "var/log/fake-systemctl.log"))
				if m := enableCall(string(calls)); m != "" {
					t.Errorf("install ran systemctl %q", m)
				}
				links, _ := filepath.Glob(filepath.Join(root, "etc/systemd/system/*.wants/*"))
				if len(links) != 0 {
					t.Errorf("units enabled by the package: %v", links)
				}
			}
			remove()
			for _, e := range p.For(r.Format, have) {
				if exists(filepath.Join(root, e.Dest)) {
					t.Errorf("%s left after removal", e.Dest)
				}
			}
		})
	}
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
