package qubes

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The helper-process pattern (style.md §11): the test binary, linked under the
// names of the Qubes tools into a temporary PATH, acts as those tools when
// QUBES_FAKE_TOOLS=1. Each invocation is logged, and its behaviour comes from
// the first matching rule.

// fakeRule describes one fake tool behaviour.
type fakeRule struct {
	// Argv is matched against the invocation's argv joined by spaces; a
	// trailing "*" makes it a prefix.
	Argv        string `json:"argv"`
	Stdout      string `json:"stdout,omitempty"`
	Stderr      string `json:"stderr,omitempty"`
	StderrBytes int    `json:"stderr_bytes,omitempty"`
	Exit        int    `json:"exit,omitempty"`
	Echo        bool   `json:"echo,omitempty"` // copy stdin to stdout first
	Hang        bool   `json:"hang,omitempty"` // sleep until killed
}

type fakeCall struct {
	Argv  []string `json:"argv"`
	LCAll string   `json:"lc_all"`
}

var fakeToolNames = []string{
	"qvm-run", "qvm-check", "qvm-create", "qvm-prefs", "qvm-tags", "qvm-features",
	"qvm-service", "qvm-start", "qvm-shutdown", "qrexec-client", "qrexec-client-vm",
}

func fakeTool() int {
	argv := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	if f, err := os.OpenFile(os.Getenv("FAKE_LOG"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		b, _ := json.Marshal(fakeCall{Argv: argv, LCAll: os.Getenv("LC_ALL")})
		f.Write(append(b, '\n'))
		f.Close()
	}
	var rules []fakeRule
	if b, err := os.ReadFile(os.Getenv("FAKE_RULES")); err == nil {
		json.Unmarshal(b, &rules)
	}
	joined := strings.Join(argv, " ")
	for _, r := range rules {
		if r.Argv != joined && !(strings.HasSuffix(r.Argv, "*") && strings.HasPrefix(joined, strings.TrimSuffix(r.Argv, "*"))) {
			continue
		}
		if r.Echo {
			io.Copy(os.Stdout, os.Stdin)
		}
		if r.Hang {
			time.Sleep(time.Hour)
		}
		os.Stdout.WriteString(r.Stdout)
		os.Stderr.WriteString(r.Stderr)
		if r.StderrBytes > 0 {
			os.Stderr.WriteString(strings.Repeat("x", r.StderrBytes))
		}
		return r.Exit
	}
	return 0
}

// fakeTools installs the fake tools with rules and returns a Client using the
// real ExecRunner, plus a function returning the logged invocations.
func fakeTools(t *testing.T, rules []fakeRule) (*Client, func() []fakeCall) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range fakeToolNames {
		if err := os.Symlink(exe, filepath.Join(bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(rules)
	rulesFile := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(rulesFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "log.jsonl")
	t.Setenv("PATH", bin)
	t.Setenv("QUBES_FAKE_TOOLS", "1")
	t.Setenv("FAKE_RULES", rulesFile)
	t.Setenv("FAKE_LOG", logFile)
	t.Setenv("LC_ALL", "de_DE.UTF-8") // the runner must override it
	calls := func() []fakeCall {
		f, err := os.Open(logFile)
		if err != nil {
			return nil
		}
		defer f.Close()
		var out []fakeCall
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var c fakeCall
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Fatalf("bad log line %q: %v", sc.Text(), err)
			}
			out = append(out, c)
		}
		return out
	}
	return &Client{}, calls
}
