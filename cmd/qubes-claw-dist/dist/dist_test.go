package dist

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2/files"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// repoRoot is the product module, three levels up.
const repoRoot = "../../.."

// exampleRoot is a stand-in repository with one binary, so the packager is
// tested end to end whatever binaries the product has committed so far.
var exampleRoot, _ = filepath.Abs("testdata/example")

// examplePkg uses every kind of entry, scriptlets of both formats and every
// relation, like the real packages do.
func examplePkg() pkgspec.Package {
	return pkgspec.Package{
		Name:        "claw-example",
		Summary:     "packager test package",
		Description: "Two lines of\ndescription.",
		Side:        pkgspec.VM,
		Formats:     []pkgspec.Format{pkgspec.RPM, pkgspec.Arch},
		Epoch:       "1",
		Entries: []pkgspec.Entry{
			{Kind: pkgspec.Binary, Source: "claw-example", Dest: "/usr/bin/claw-example", Mode: 0o755},
			{Kind: pkgspec.Symlink, Source: "claw-example", Dest: "/usr/bin/claw-ex"},
			{Kind: pkgspec.File, Source: "rpm/claw-example.service", Dest: "/usr/lib/systemd/system/claw-example.service", Mode: 0o644},
			{Kind: pkgspec.Config, Source: "configs/claw-example.yaml", Dest: "/etc/claw-example/claw-example.yaml", Mode: 0o640},
			{Kind: pkgspec.Dir, Dest: "/etc/claw-example", Mode: 0o755},
			{Kind: pkgspec.Dir, Dest: "/var/lib/claw-example", Mode: 0o700},
			{Kind: pkgspec.Ghost, Dest: "/var/lib/claw-example/scriptlets.log", Mode: 0o644},
		},
		Depends: []pkgspec.Dep{
			{Name: "/bin/sh", Why: "scriptlets", Only: pkgspec.RPM},
			{Name: "claw-fake-systemd", Why: "the unit"},
		},
		Obsoletes: []pkgspec.Dep{{Name: "claw-example-python < 2.0", Why: "the 1.x package"}},
		Scripts: map[pkgspec.Format]pkgspec.Scripts{
			pkgspec.RPM:  {PostInstall: "rpm/claw-example.post.sh", PostRemove: "rpm/claw-example.postun.sh"},
			pkgspec.Arch: {PostInstall: "arch/claw-example.install.sh", PostUpgrade: "arch/claw-example.upgrade.sh"},
		},
	}
}

func exampleOptions(out string) Options {
	return Options{
		Root:     exampleRoot,
		Out:      out,
		MTime:    time.Unix(1700000000, 0).UTC(),
		Packages: []pkgspec.Package{examplePkg()},
		Have:     func(name string) bool { return name == "claw-example" },
	}
}

// productOptions builds the real packages, with a fixed file time so the
// golden files do not change with every commit.
func productOptions(out string) Options {
	return Options{Root: repoRoot, Out: out, MTime: time.Unix(1700000000, 0).UTC()}
}

func TestInfo(t *testing.T) {
	o := exampleOptions(t.TempDir())
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	var err error
	if o.changelog, err = writeChangelog(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	// Any existing file stands in for the binary: Info only checks it exists.
	bins := map[string]string{"claw-example": filepath.Join(exampleRoot, "version")}
	rpm, err := Info(examplePkg(), pkgspec.RPM, o, bins)
	if err != nil {
		t.Fatal(err)
	}
	arch, err := Info(examplePkg(), pkgspec.Arch, o, bins)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, c := range rpm.Contents {
		types[c.Destination] = c.Type
	}
	want := map[string]string{
		"/usr/bin/claw-example":                "",
		"/usr/bin/claw-ex":                     files.TypeSymlink,
		"/etc/claw-example/claw-example.yaml":  files.TypeConfigNoReplace,
		"/etc/claw-example":                    files.TypeDir,
		"/var/lib/claw-example/scriptlets.log": files.TypeRPMGhost,
	}
	for dest, typ := range want {
		if got, ok := types[dest]; !ok || got != typ {
			t.Errorf("rpm %s: type %q (present %v), want %q", dest, got, ok, typ)
		}
	}
	for _, c := range arch.Contents {
		if c.Type == files.TypeRPMGhost {
			t.Errorf("arch ships the ghost %s", c.Destination)
		}
	}
	if got := strings.Join(rpm.Depends, ","); got != "/bin/sh,claw-fake-systemd" {
		t.Errorf("rpm depends %q", got)
	}
	if got := strings.Join(arch.Depends, ","); got != "claw-fake-systemd" {
		t.Errorf("arch depends %q: a file path means nothing to pacman", got)
	}
	if strings.Contains(arch.Description, "\n") {
		t.Errorf("arch pkgdesc spans lines: %q", arch.Description)
	}
	if rpm.Changelog == "" || arch.Changelog != "" {
		t.Errorf("changelog: rpm %q, arch %q (only RPM has one)", rpm.Changelog, arch.Changelog)
	}
	if rpm.RPM.BuildHost != pkgspec.BuildHost || rpm.Epoch != "1" || rpm.Release != "1" || rpm.Version != "0.1.0" {
		t.Errorf("rpm header: host %q epoch %q version %q release %q", rpm.RPM.BuildHost, rpm.Epoch, rpm.Version, rpm.Release)
	}
	if _, err := Info(examplePkg(), pkgspec.RPM, o, map[string]string{}); err == nil {
		t.Error("a package without its built binary was accepted")
	}
}

// build builds opts and returns the package files by base name.
func build(t *testing.T, o Options) map[string][]byte {
	t.Helper()
	rs, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, r := range rs {
		b, err := os.ReadFile(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(r.Path)] = b
	}
	return out
}

// TestReproducible builds the example and the real packages twice, with
// every source touched in between, and wants identical bytes.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	for _, tc := range []struct {
		name string
		opts func(string) Options
	}{
		{"example", exampleOptions},
		{"product", productOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := build(t, tc.opts(t.TempDir()))
			touch(t, tc.opts("").Root)
			second := build(t, tc.opts(t.TempDir()))
			if tc.name == "example" && len(first) != 2 {
				t.Errorf("example: %d packages, want an RPM and an Arch package", len(first))
			}
			for name, b := range first {
				if !bytes.Equal(b, second[name]) {
					t.Errorf("%s differs between two builds", name)
				}
			}
			if len(first) != len(second) {
				t.Errorf("%d packages, then %d", len(first), len(second))
			}
		})
	}
}

// touch sets the mtime of the packaging sources to now, so a build that
// leaked source mtimes into a package would differ.
func touch(t *testing.T, root string) {
	now := time.Now()
	for _, dir := range []string{"rpm", "arch", "configs"} {
		filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				os.Chtimes(p, now, now)
			}
			return nil
		})
	}
}

// queries are the views of a package compared with golden files. For RPMs:
// the file list, the scriptlets, and per-file flags (cn = config noreplace,
// g = ghost), modes and owners plus the header fields that matter. Sizes and
// digests stay out: they change with every code change.
var rpmQueries = []struct {
	suffix string
	args   []string
}{
	{"rpm-qpl", []string{"-qpl"}},
	{"rpm-scripts", []string{"-qp", "--scripts"}},
	{"rpm-qf", []string{"-qp", "--qf", `[%{FILEFLAGS:fflags}\t%{FILEMODES:perms}\t%{FILEUSERNAME}:%{FILEGROUPNAME}\t%{FILENAMES}\t%{FILELINKTOS}\n]`}},
	{"rpm-header", []string{"-qp", "--qf", `name=%{NAME}\nepoch=%{EPOCH}\nversion=%{VERSION}\nrelease=%{RELEASE}\narch=%{ARCH}\n` +
		`license=%{LICENSE}\nurl=%{URL}\nvendor=%{VENDOR}\ngroup=%{GROUP}\nsummary=%{SUMMARY}\nbuildhost=%{BUILDHOST}\n` +
		`buildtime=%{BUILDTIME}\npayload=%{PAYLOADCOMPRESSOR}\n[requires=%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\n]` +
		`[obsoletes=%{OBSOLETENAME} %{OBSOLETEFLAGS:depflags} %{OBSOLETEVERSION}\n][conflicts=%{CONFLICTNAME}\n]` +
		`[provides=%{PROVIDENAME} %{PROVIDEFLAGS:depflags} %{PROVIDEVERSION}\n]%{DESCRIPTION}\n`}},
	{"rpm-changelog", []string{"-qp", "--changelog"}},
}

// sizeRe drops .PKGINFO lines that change with every code change.
var sizeRe = regexp.MustCompile(`(?m)^size = .*\n`)

// TestGolden compares what rpm and pacman say about each package with
// testdata/golden (rewrite with -update).
func TestGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	need(t, "rpm", "pacman", "bsdtar")
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"example", exampleOptions(t.TempDir())},
		{"product", productOptions(t.TempDir())},
	} {
		rs, err := Build(context.Background(), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if tc.name == "product" && len(rs) == 0 {
			t.Log("no product binary committed yet: only the example is checked")
		}
		for _, r := range rs {
			if r.Format == pkgspec.RPM {
				for _, q := range rpmQueries {
					out := run(t, "rpm", append(q.args, r.Path)...)
					golden(t, r.Package+"."+q.suffix, out)
				}
				continue
			}
			golden(t, r.Package+".pacman-Qlp", run(t, "pacman", "-Qlp", r.Path))
			info := run(t, "bsdtar", "-xOf", r.Path, ".PKGINFO")
			golden(t, r.Package+".PKGINFO", sizeRe.ReplaceAllString(info, ""))
			golden(t, r.Package+".INSTALL", runOK(t, "bsdtar", "-xOf", r.Path, ".INSTALL"))
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v (run go test ./dist -update in cmd/qubes-claw-dist)", name, err)
		return
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (rerun with -update if intended):\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

// need skips without the tools unless QUBES_CLAW_REQUIRE_TOOLS is set (make
// test-packages sets it after installing them), where a skip would hide a gap.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("QUBES_CLAW_REQUIRE_TOOLS") != "" {
				t.Fatalf("%s not installed (make deps)", tool)
			}
			t.Skipf("%s not installed (make deps)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// runOK is run for commands whose failure means "absent" (.INSTALL of a
// package without scriptlets).
func runOK(t *testing.T, name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}
