package dist

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
)

// builtPackages are the packages buildable from the committed binaries.
func builtPackages() []pkgspec.Package {
	var out []pkgspec.Package
	have := pkgspec.Committed(repoRoot)
	for _, p := range pkgspec.All() {
		if p.Buildable(have) {
			out = append(out, p)
		}
	}
	return out
}

// specPackages are the built packages that have an RPM.
func specPackages() []pkgspec.Package {
	var out []pkgspec.Package
	for _, p := range builtPackages() {
		if p.Has(pkgspec.RPM) {
			out = append(out, p)
		}
	}
	return out
}

// generated compares a file generated from pkgspec with the committed copy
// (rewritten with -update).
func generated(t *testing.T, rel, got string) {
	t.Helper()
	path := filepath.Join(repoRoot, rel)
	if *update {
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte(got), 0o644))
	}
	if want, err := os.ReadFile(path); err != nil || string(want) != got {
		t.Errorf("%s is stale or missing (go test ./dist -update in cmd/qubes-claw-dist): %v", rel, err)
	}
}

// TestBuilderFiles keeps the Builder v2 files equal to what pkgspec says:
// builderv2/NAME.spec.in of every built RPM package, the PKGBUILD.in of every
// built Arch package, and .qubesbuilder listing exactly those.
func TestBuilderFiles(t *testing.T) {
	have := pkgspec.Committed(repoRoot)
	pkgs := builtPackages()
	for _, p := range pkgs {
		if p.Has(pkgspec.RPM) {
			got, err := Spec(repoRoot, p, have)
			must(t, err)
			generated(t, "builderv2/"+p.Name+".spec.in", got)
		}
		if p.Has(pkgspec.Arch) {
			got, err := PKGBUILD(p, have)
			must(t, err)
			generated(t, ArchDir(p)+"/PKGBUILD.in", got)
		}
	}
	generated(t, ".qubesbuilder", QubesBuilder(pkgs))
	// Nothing stale of a package that is no longer built (or renamed).
	want := map[string]bool{}
	for _, p := range pkgs {
		want["builderv2/"+p.Name+".spec.in"] = p.Has(pkgspec.RPM)
		want[ArchDir(p)+"/PKGBUILD.in"] = p.Has(pkgspec.Arch)
	}
	found, _ := filepath.Glob(filepath.Join(repoRoot, "builderv2", "*.spec.in"))
	arch, _ := filepath.Glob(filepath.Join(repoRoot, "builderv2", "archlinux", "*", "PKGBUILD.in"))
	for _, f := range append(found, arch...) {
		rel, _ := filepath.Rel(repoRoot, f)
		if !want[filepath.ToSlash(rel)] {
			t.Errorf("%s belongs to no built package", rel)
		}
	}
}

// TestQubesBuilderSides: dom0 packages only under host, VM packages only
// under vm, Arch only for VMs.
func TestQubesBuilderSides(t *testing.T) {
	qb := QubesBuilder(pkgspec.All())
	i := strings.Index(qb, "\nvm:\n")
	if i < 0 {
		t.Fatalf("no vm section:\n%s", qb)
	}
	host, vm := qb[:i+1], qb[i+1:]
	for _, p := range pkgspec.All() {
		spec := "- builderv2/" + p.Name + ".spec\n"
		inHost, inVM := strings.Contains(host, spec), strings.Contains(vm, spec)
		if p.Side == pkgspec.Dom0 && (!inHost || inVM) || p.Side == pkgspec.VM && (inHost || !inVM) {
			t.Errorf("%s (%s): host %v, vm %v", p.Name, p.Side, inHost, inVM)
		}
		if got := strings.Contains(qb, "- "+ArchDir(p)+"\n"); got != (p.Side == pkgspec.VM && p.Has(pkgspec.Arch)) {
			t.Errorf("%s: archlinux build listed %v", p.Name, got)
		}
	}
}

var linkPerms = regexp.MustCompile(`(?m)^l[-rwx]{9}`)

// TestRpmbuild renders each spec as Qubes Builder would, builds it with the
// real rpmbuild from a source archive of the committed tree (vendor/
// included, as Builder's archive would have it) with the network off, and
// wants the same files, modes and flags as the nfpm package.
func TestRpmbuild(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles from a source archive")
	}
	need(t, "rpmbuild", "rpm", "git", "tar")
	pkgs := specPackages()
	if len(pkgs) == 0 {
		t.Skip("no product binary committed yet")
	}
	version := strings.TrimSpace(readFile(t, filepath.Join(repoRoot, "version")))
	rel := strings.TrimSpace(readFile(t, filepath.Join(repoRoot, "rel")))
	top := t.TempDir()
	src := filepath.Join(top, "qubes-claw-"+version)
	must(t, os.MkdirAll(filepath.Join(top, "SOURCES"), 0o755))
	run(t, "sh", "-c", `git -C "$1" archive --format=tar --prefix="$2/" HEAD | tar -x -C "$3"`,
		"sh", repoRoot, filepath.Base(src), top)
	// Builder v2 archives the git tree and builds with no network: the
	// committed vendor/ must be all the module sources the build needs.
	if _, err := os.Stat(filepath.Join(src, "vendor", "modules.txt")); err != nil {
		t.Fatalf("the committed tree has no vendor/ (run go mod vendor and commit it): %v", err)
	}
	run(t, "tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-C", top, "-czf",
		filepath.Join(top, "SOURCES", filepath.Base(src)+".tar.gz"), filepath.Base(src))
	nfpmOut := t.TempDir()
	built, err := Build(context.Background(), Options{Root: repoRoot, Out: nfpmOut, Formats: []pkgspec.Format{pkgspec.RPM}})
	must(t, err)
	view := "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES} %{FILELINKTOS}\n]"
	for _, p := range pkgs {
		tmpl := readFile(t, filepath.Join(repoRoot, "builderv2", p.Name+".spec.in"))
		spec := strings.NewReplacer("@VERSION@", version, "@REL@", rel, "@CHANGELOG@", pkgspec.SpecChangelog()).Replace(tmpl)
		specPath := filepath.Join(top, p.Name+".spec")
		must(t, os.WriteFile(specPath, []byte(spec), 0o644))
		cmd := exec.Command("rpmbuild", "-bb", "--nodeps", "--define", "_topdir "+top,
			"--define", "_build_id_links none", specPath)
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=vendor")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rpmbuild %s: %v\n%s", p.Name, err, out)
		}
		got, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", p.Name+"-"+version+"-"+rel+"*.rpm"))
		if len(got) != 1 {
			t.Fatalf("rpmbuild produced %v", got)
		}
		var want string
		for _, r := range built {
			if r.Package == p.Name {
				want = run(t, "rpm", "-qp", "--qf", view, r.Path)
			}
		}
		// A symlink's permission bits mean nothing on Linux; rpmbuild records
		// 0777, rpmpack 0.
		want = linkPerms.ReplaceAllString(want, "l?????????")
		if have := linkPerms.ReplaceAllString(run(t, "rpm", "-qp", "--qf", view, got[0]), "l?????????"); have != want {
			t.Errorf("%s: rpmbuild and nfpm differ:\n--- nfpm\n%s--- rpmbuild\n%s", p.Name, want, have)
		}
	}
}

// TestVendorInSync keeps the committed vendor/ equal to what go.mod asks for:
// Builder v2 builds from it offline, so a stale tree would fail only there.
func TestVendorInSync(t *testing.T) {
	need(t, "go")
	fresh := filepath.Join(t.TempDir(), "vendor")
	cmd := exec.Command("go", "mod", "vendor", "-o", fresh)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	want := treeDigest(t, fresh)
	got := treeDigest(t, filepath.Join(repoRoot, "vendor"))
	for p, h := range want {
		if got[p] != h {
			t.Errorf("vendor/%s differs from go.mod's modules (run go mod vendor)", p)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("vendor/%s is not needed by go.mod (run go mod vendor)", p)
		}
	}
}

// treeDigest maps every regular file under dir to the SHA-256 of its content.
func treeDigest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
