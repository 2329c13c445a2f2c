package programs

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/config"
)

var update = flag.Bool("update", false, "rewrite docs/config.md")

// repoRoot is two levels up from this package.
const repoRoot = "../.."

// unconfigured binaries read no config file: qubes-sim stands in for Qubes'
// own tools, which take only arguments.
// qubes-claw-dist is the packager, a build tool in its own module.
// qubes-claw-standin is the test/demo stand-in provider (flags only; never packaged).
var unconfigured = map[string]bool{"qubes-sim": true, "qubes-claw-dist": true, "qubes-claw-standin": true}

func descriptions() []config.Description {
	var out []config.Description
	for _, p := range All() {
		out = append(out, p.Describe())
	}
	return out
}

// TestConfigReference keeps docs/config.md equal to what the config types say.
func TestConfigReference(t *testing.T) {
	want := config.Table(descriptions()...)
	path := filepath.Join(repoRoot, "docs", "config.md")
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/config.md is stale: run go test ./pkg/programs -update")
	}
}

// TestEveryBinaryRegistered fails when a binary in cmd/ has no Spec here.
func TestEveryBinaryRegistered(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(repoRoot, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, d := range descriptions() {
		if have[d.Program] {
			t.Errorf("%s registered twice", d.Program)
		}
		have[d.Program] = true
	}
	for _, e := range entries {
		if e.IsDir() && !unconfigured[e.Name()] && !have[e.Name()] {
			t.Errorf("cmd/%s has no config Spec in programs.All()", e.Name())
		}
	}
}

// TestShippedConfigs checks configs/PROGRAM.yaml: it loads strictly (no
// unknown key, no wrong type) and mentions every key, commented or not, so the
// shipped file documents the whole schema.
func TestShippedConfigs(t *testing.T) {
	for _, p := range All() {
		d := p.Describe()
		t.Run(d.Program, func(t *testing.T) {
			path := filepath.Join(repoRoot, "configs", d.Program+".yaml")
			if err := p.CheckFile(path); err != nil {
				t.Fatalf("shipped config: %v", err)
			}
			b, _ := os.ReadFile(path)
			for _, k := range d.Keys {
				leaf := k.Name[strings.LastIndex(k.Name, ".")+1:]
				re := regexp.MustCompile(`(?m)^\s*#?\s*-?\s*` + regexp.QuoteMeta(leaf) + `:`)
				if !re.Match(b) {
					t.Errorf("%s does not document key %s", path, k.Name)
				}
			}
		})
	}
}

// TestPrefixesDistinct: one prefix per program, none a prefix of another's
// variables (QVMR_ vs QVMRD_ is fine; QVMR vs QVMR_X is not).
func TestPrefixesDistinct(t *testing.T) {
	ds := descriptions()
	for i, a := range ds {
		if !regexp.MustCompile(`^[A-Z][A-Z0-9]*$`).MatchString(a.EnvPrefix) {
			t.Errorf("%s: bad env prefix %q", a.Program, a.EnvPrefix)
		}
		for _, b := range ds[i+1:] {
			if strings.HasPrefix(b.EnvPrefix+"_", a.EnvPrefix+"_") || strings.HasPrefix(a.EnvPrefix+"_", b.EnvPrefix+"_") {
				t.Errorf("env prefixes of %s and %s collide", a.Program, b.Program)
			}
		}
	}
}
