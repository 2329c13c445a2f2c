package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/remote/agent"
	"github.com/qubes-claw/qubes-claw/pkg/remote/daemon"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

func run(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(newRootCmd(), args, cli.Stdio{In: stdin, Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// vmEnv makes a VM home for the client: its own HOME, an empty config file
// and the VM name.
func vmEnv(t *testing.T) queue.Dir {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("QVMR_VM_NAME", "work")
	t.Setenv("QVMR_PICKUP_TIMEOUT", "10s")
	cfg := filepath.Join(t.TempDir(), "qvm-remote.yaml")
	os.WriteFile(cfg, nil, 0o600)
	t.Setenv("QVMR_CONFIG", cfg)
	return queue.Dir(filepath.Join(home, ".qvm-remote"))
}

func TestKey(t *testing.T) {
	q := vmEnv(t)
	code, out, errs := run(t, nil, "key", "gen")
	if code != 0 || !strings.Contains(out, "qvm-remote-dom0 authorize work") {
		t.Fatalf("gen: %d %q %q", code, out, errs)
	}
	fi, err := os.Stat(q.KeyFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	code, shown, _ := run(t, nil, "key", "show")
	if code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(shown) {
		t.Fatalf("show: %d %q", code, shown)
	}
	k, _ := keys.Parse(shown)
	if _, fp, _ := run(t, nil, "key", "show", "--fingerprint"); fp != k.Fingerprint()+"\n" {
		t.Errorf("fingerprint %q", fp)
	}
	if code, _, errs := run(t, nil, "key", "gen"); code != 1 || !strings.Contains(errs, "--force") {
		t.Errorf("second gen must refuse: %d %q", code, errs)
	}
	other := keys.Generate()
	if code, _, _ := run(t, strings.NewReader(other.Hex()), "key", "import"); code != 1 {
		t.Errorf("import over a key without --force: %d", code)
	}
	if code, _, errs := run(t, strings.NewReader(other.Hex()+"\n"), "key", "import", "--force", "-"); code != 0 {
		t.Fatalf("import: %d %q", code, errs)
	}
	if _, shown, _ := run(t, nil, "key", "show"); shown != other.Hex()+"\n" {
		t.Errorf("imported key not stored")
	}
	if code, _, _ := run(t, nil, "key", "import", "--force", "zz"); code != 1 {
		t.Errorf("bad key accepted")
	}
}

func TestUsage(t *testing.T) {
	vmEnv(t)
	for _, args := range [][]string{{"-v", "-q", "true"}, {"-t", "0", "true"}, {"-t", "x", "true"}, {"--nope"}, {"log", "0"}, {"history", "x"}} {
		if code, _, errs := run(t, strings.NewReader(""), args...); code != 2 {
			t.Errorf("%q: %d %q", args, code, errs)
		}
	}
	if code, _, errs := run(t, strings.NewReader("true"), "true"); code != 255 || !strings.Contains(errs, "no key configured") {
		t.Errorf("no key: %d %q", code, errs)
	}
}

// startDom0 runs the real daemon in-process, connected to this VM's queue by
// pipes through the real agent: the client's whole path without qvm-run.
func startDom0(t *testing.T, q queue.Dir) (keyDir string) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	root := t.TempDir()
	cfg := daemon.Defaults()
	cfg.KeyDir = config.Path(filepath.Join(root, "remote.d"))
	cfg.LegacyConf, cfg.QrexecDir = "", ""
	cfg.StateDir = config.Path(filepath.Join(root, "state"))
	cfg.RuntimeDir = config.Path(filepath.Join(root, "run"))
	cfg.Exec.Bash, cfg.Exec.Home = bash, config.Path(root)
	cfg.ReopenMin, cfg.ReopenMax = 10*time.Millisecond, 100*time.Millisecond
	open := func(ctx context.Context, vm string) (io.ReadWriteCloser, error) {
		toR, toW := io.Pipe()
		fromR, fromW := io.Pipe()
		a := &agent.Agent{Queue: q, Log: logging.Discard(), LockWait: 5 * time.Second}
		go func() {
			err := a.Serve(ctx, toR, fromW)
			toR.CloseWithError(io.EOF)
			fromW.CloseWithError(err)
		}()
		return struct {
			io.Reader
			io.Writer
			io.Closer
		}{fromR, toW, closer(func() error { toW.Close(); fromR.Close(); return nil })}, nil
	}
	d, err := daemon.New(cfg, logging.Discard(), open)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, []string{"work"}) }()
	t.Cleanup(func() { cancel(); <-done; d.Close() })
	return string(cfg.KeyDir)
}

type closer func() error

func (c closer) Close() error { return c() }

func TestRunCommand(t *testing.T) {
	q := vmEnv(t)
	if code, _, errs := run(t, nil, "key", "gen"); code != 0 {
		t.Fatal(errs)
	}
	k, err := keys.Parse(mustRead(t, q.KeyFile()))
	if err != nil {
		t.Fatal(err)
	}
	keyDir := startDom0(t, q)
	if err := (keys.Store{Dir: keyDir}).Authorize("work", k); err != nil {
		t.Fatal(err)
	}

	code, out, errs := run(t, strings.NewReader(""), "echo out; echo err >&2; exit 3")
	if code != 3 || out != "out\n" || errs != "err\n" {
		t.Errorf("args: %d %q %q", code, out, errs)
	}
	// ARGS are joined with spaces and flags after COMMAND are the command's.
	if code, out, _ := run(t, strings.NewReader(""), "printf", "%s-%s", "a", "-v"); code != 0 || out != "a--v" {
		t.Errorf("joined args: %d %q", code, out)
	}
	code, out, _ = run(t, strings.NewReader("x=4\necho $((x*2))\n"))
	if code != 0 || out != "8\n" {
		t.Errorf("stdin script: %d %q", code, out)
	}
	if code, _, errs := run(t, strings.NewReader(""), "-t", "1", "sleep 30"); code != 124 || !strings.Contains(errs, "timed out") {
		t.Errorf("timeout: %d %q", code, errs)
	}
	if code, _, errs := run(t, strings.NewReader(""), "printf 'a\\001b'"); code != 0 || errs != "" {
		t.Errorf("binary output is fine: %d %q", code, errs)
	}
	if code, _, errs := run(t, strings.NewReader("echo \x01"), "-q"); code != 255 || errs != "" {
		t.Errorf("-q refusal must be silent: %d %q", code, errs)
	}
	if code, _, errs := run(t, strings.NewReader("echo \x01")); code != 255 || !strings.Contains(errs, "binary content") {
		t.Errorf("binary command: %d %q", code, errs)
	}
	if code, out, errs := run(t, nil, "ping"); code != 0 || !strings.HasPrefix(out, "pong from dom0") {
		t.Errorf("ping: %d %q %q", code, out, errs)
	}
	if code, out, _ := run(t, nil, "status"); code != 0 || !strings.Contains(out, "channel: open") || !strings.Contains(out, k.Fingerprint()) {
		t.Errorf("status: %d %q", code, out)
	}
	if code, out, _ := run(t, nil, "history", "3"); code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "true") {
		t.Errorf("history: %d %q", code, out)
	}
	if code, out, _ := run(t, nil, "log", "2"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("log: %d %q", code, out)
	}
	if err := (keys.Store{Dir: keyDir}).Revoke("work"); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := run(t, strings.NewReader(""), "true"); code != 255 || !strings.Contains(errs, "no key configured for this VM in dom0") {
		t.Errorf("revoked: %d %q", code, errs)
	}
	if code, out, _ := run(t, nil, "queue", "status"); code != 0 || !strings.Contains(out, "pending: 0") {
		t.Errorf("queue status: %d %q", code, out)
	}
	os.WriteFile(filepath.Join(q.Tmp(), ".left.over"), nil, 0o600)
	if code, out, _ := run(t, nil, "queue", "clean"); code != 0 || !strings.Contains(out, "removed 1 files") {
		t.Errorf("queue clean: %d %q", code, out)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
