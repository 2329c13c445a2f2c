package dist

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
)

// specPackages are the RPM packages buildable from the committed binaries.
func specPackages() []pkgspec.Package {
	var out []pkgspec.Package
	have := pkgspec.Committed(repoRoot)
	for _, p := range pkgspec.All() {
		if p.Has(pkgspec.RPM) && p.Buildable(have) {
			out = append(out, p)
		}
	}
	return out
}

// TestSpecTemplates keeps builderv2/NAME.spec.in equal to what pkgspec says
// (rewrite with -update), and .qubesbuilder listing exactly those specs.
func TestSpecTemplates(t *testing.T) {
	have := pkgspec.Committed(repoRoot)
	var listed []string
	for _, p := range specPackages() {
		got, err := Spec(repoRoot, p, have)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(repoRoot, "builderv2", p.Name+".spec.in")
		if *update {
			must(t, os.WriteFile(path, []byte(got), 0o644))
		}
		if want, err := os.ReadFile(path); err != nil || string(want) != got {
			t.Errorf("%s is stale or missing (go test ./dist -update): %v", path, err)
		}
		listed = append(listed, "builderv2/"+p.Name+".spec")
	}
	qb := readFile(t, filepath.Join(repoRoot, ".qubesbuilder"))
	var inFile []string
	for _, l := range strings.Split(qb, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "- builderv2/") && strings.HasSuffix(l, ".spec") {
			inFile = append(inFile, strings.TrimPrefix(l, "- "))
		}
	}
	sort.Strings(listed)
	sort.Strings(inFile)
	if strings.Join(listed, " ") != strings.Join(inFile, " ") {
		t.Errorf(".qubesbuilder lists %v, want %v", inFile, listed)
	}
}

// TestRpmbuild renders each spec as Qubes Builder would, builds it with the
// real rpmbuild from a source archive of the committed tree plus vendored
// modules with the network off, and wants the same files, modes and flags
// as the nfpm package.
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
	vendor := exec.Command("go", "mod", "vendor")
	vendor.Dir = src
	vendor.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
	if out, err := vendor.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor from the module cache: %v\n%s", err, out)
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
		if have := run(t, "rpm", "-qp", "--qf", view, got[0]); have != want {
			t.Errorf("%s: rpmbuild and nfpm differ:\n--- nfpm\n%s--- rpmbuild\n%s", p.Name, want, have)
		}
	}
}
