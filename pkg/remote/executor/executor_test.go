package executor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	return Config{
		RuntimeDir: filepath.Join(t.TempDir(), "run"),
		Bash:       bash,
		Path:       DefaultPath,
		Lang:       "C.UTF-8",
		Home:       t.TempDir(),
		Grace:      300 * time.Millisecond,
		MaxStdout:  10 << 20,
		MaxStderr:  10 << 20,
	}
}

// syncBuffer is written by the executor's pump goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func run(t *testing.T, c Config, body string, timeout time.Duration) (Outcome, []byte, []byte) {
	t.Helper()
	var stdout, stderr syncBuffer
	out, err := Run(context.Background(), c, Job{
		VM: "work", ID: "id-1", Body: []byte(body), Timeout: timeout, Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatalf("Run(%q): %v", body, err)
	}
	return out, stdout.Bytes(), stderr.Bytes()
}

func TestExitCodes(t *testing.T) {
	c := testConfig(t)
	tests := []struct {
		body string
		want int
	}{
		{"true", 0},
		{"false", 1},
		{"exit 42", 42},
		{"exit 255", 255},
		{"exit 256", 0},
		{"kill -KILL $$", 137},
		{"no-such-command-xyz", 127},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			out, _, _ := run(t, c, tt.body, time.Minute)
			if out.ExitCode != tt.want || out.TimedOut {
				t.Errorf("exit %d (timed out %v), want %d", out.ExitCode, out.TimedOut, tt.want)
			}
		})
	}
}

func TestStreamsSeparateAndBinarySafe(t *testing.T) {
	c := testConfig(t)
	body := `for i in $(seq 0 255); do printf "\\$(printf %03o $i)"; done; echo err >&2`
	out, stdout, stderr := run(t, c, body, time.Minute)
	want := make([]byte, 256)
	for i := range want {
		want[i] = byte(i)
	}
	if out.ExitCode != 0 || !bytes.Equal(stdout, want) {
		t.Errorf("stdout = %q (exit %d), want all 256 byte values", stdout, out.ExitCode)
	}
	if string(stderr) != "err\n" {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestCleanEnvironment(t *testing.T) {
	c := testConfig(t)
	t.Setenv("QVMR_TEST_LEAK", "must-not-appear")
	t.Setenv("QVMR_TEST_PASS", "passed")
	c.PassEnv = []string{"QVMR_TEST_PASS", "QVMR_TEST_UNSET"}
	_, stdout, _ := run(t, c, `env -0`, time.Minute)
	got := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(string(stdout), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH": DefaultPath, "HOME": c.Home, "LANG": "C.UTF-8",
		"QVM_REMOTE_VM": "work", "QVM_REMOTE_ID": "id-1", "QVMR_TEST_PASS": "passed",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// bash adds PWD, SHLVL and _ itself; anything else leaked in.
	for k := range got {
		if _, ok := want[k]; !ok && k != "PWD" && k != "SHLVL" && k != "_" && k != "OLDPWD" {
			t.Errorf("unexpected variable %s=%q", k, got[k])
		}
	}
}

func TestSandbox(t *testing.T) {
	c := testConfig(t)
	body := `readlink /proc/self/fd/0
stat -c %a "$0"
stat -c %a "$(dirname "$0")"
read -r _ _ _ _ pgrp _ < /proc/$$/stat; [ "$pgrp" = "$$" ] && echo own-group
pwd`
	out, stdout, stderr := run(t, c, body, time.Minute)
	want := "/dev/null\n700\n700\nown-group\n" + c.Home + "\n"
	if string(stdout) != want || out.ExitCode != 0 {
		t.Errorf("stdout %q stderr %q exit %d, want %q", stdout, stderr, out.ExitCode, want)
	}
	left, _ := os.ReadDir(c.RuntimeDir)
	if len(left) != 0 {
		t.Errorf("runtime dir not cleaned: %v", left)
	}
}

func TestScriptNotOverwritten(t *testing.T) {
	c := testConfig(t)
	if err := os.MkdirAll(c.RuntimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.RuntimeDir, "id-1.sh"), []byte("echo planted"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), c, Job{ID: "id-1", Body: []byte("true"), Timeout: time.Minute})
	if err == nil {
		t.Error("an existing script must not be reused")
	}
}

// TestTimeoutKillsGroup: a background child that would outlive bash is gone
// when Run returns, whether it honours TERM or not.
func TestTimeoutKillsGroup(t *testing.T) {
	for name, body := range map[string]string{
		"term":         "sleep 600 & echo $!; wait",
		"term ignored": "trap '' TERM; sleep 600 & echo $!; wait; wait",
	} {
		t.Run(name, func(t *testing.T) {
			c := testConfig(t)
			out, stdout, _ := run(t, c, body, 2*time.Second)
			if !out.TimedOut || out.ExitCode != ExitTimeout {
				t.Errorf("outcome %+v, want timeout with exit 124", out)
			}
			assertGone(t, stdout)
		})
	}
}

// TestLeftoversReaped: a command that exits leaving a child behind does not
// leave it running (nor hang on the pipe the child holds).
func TestLeftoversReaped(t *testing.T) {
	c := testConfig(t)
	out, stdout, _ := run(t, c, "sleep 600 & echo $!", time.Minute)
	if out.TimedOut || out.ExitCode != 0 {
		t.Errorf("outcome %+v", out)
	}
	assertGone(t, stdout)
}

func assertGone(t *testing.T, pidLine []byte) {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidLine)))
	if err != nil {
		t.Fatalf("no pid printed: %q", pidLine)
	}
	// The pid is a zombie at most until our Wait; the child of bash was
	// reparented and reaped by init, so it must be gone or a zombie.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err == nil && !bytes.Contains(b, []byte(") Z ")) {
		t.Errorf("process %d still alive: %s", pid, b)
	}
}

func TestTruncation(t *testing.T) {
	c := testConfig(t)
	c.MaxStdout = 1 << 20
	c.MaxStderr = 100
	out, stdout, stderr := run(t, c, "head -c 20000000 /dev/zero; head -c 50 /dev/zero | tr '\\0' e >&2; exit 3", time.Minute)
	wantOut := append(make([]byte, 1<<20), TruncationMarker("stdout", 1<<20)...)
	if !bytes.Equal(stdout, wantOut) {
		t.Errorf("stdout: %d bytes, want %d zero bytes and the marker", len(stdout), 1<<20)
	}
	if string(stderr) != strings.Repeat("e", 50) {
		t.Errorf("stderr = %q", stderr)
	}
	if !out.StdoutTruncated || out.StderrTruncated || out.ExitCode != 3 {
		t.Errorf("outcome %+v", out)
	}
}

// flagWriter creates a file once it has seen a given output, which the
// command waits for: the command can only finish if its first line reached
// us while it was still running.
type flagWriter struct {
	syncBuffer
	want, flag string
	once       sync.Once
}

func (w *flagWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if bytes.Contains(w.Bytes(), []byte(w.want)) {
		w.once.Do(func() { os.WriteFile(w.flag, nil, 0o600) })
	}
	return n, err
}

func TestStreamsWhileRunning(t *testing.T) {
	c := testConfig(t)
	flag := filepath.Join(t.TempDir(), "seen")
	w := &flagWriter{want: "first\n", flag: flag}
	body := "echo first; while [ ! -e " + flag + " ]; do sleep 0.05; done; echo second"
	out, err := Run(context.Background(), c, Job{ID: "s", Body: []byte(body), Timeout: 20 * time.Second, Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	if out.TimedOut || string(w.Bytes()) != "first\nsecond\n" {
		t.Errorf("outcome %+v, stdout %q: first line was not streamed while running", out, w.Bytes())
	}
}

func TestContextCancel(t *testing.T) {
	c := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	w := &flagWriter{want: "started", flag: filepath.Join(t.TempDir(), "f")}
	go func() {
		for {
			if _, err := os.Stat(w.flag); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := Run(ctx, c, Job{ID: "c", Body: []byte("echo started; sleep 600"), Timeout: time.Hour, Stdout: w})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

func TestRunAsOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	c := testConfig(t)
	c.Home = ""
	var stdout syncBuffer
	out, err := Run(context.Background(), c, Job{ID: "u", Body: []byte("id -u; echo \"$HOME\""), Timeout: time.Minute, User: "nobody", Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	if want := u.Uid + "\n" + u.HomeDir + "\n"; string(stdout.Bytes()) != want || out.ExitCode != 0 {
		t.Errorf("stdout %q exit %d, want %q", stdout.Bytes(), out.ExitCode, want)
	}
}

// What a command wrote is passed on even when its pump reads it only after
// the pipe's read deadline (set once the group is gone, for a process that
// left the group and holds the pipe): a pump starved of CPU on a loaded
// machine used to find the deadline passed and drop the command's output.
func TestPumpTakesHeldOutputAtDeadline(t *testing.T) {
	for _, tt := range []struct {
		name      string
		size      int
		max       int64
		truncated bool
	}{
		{"a line", 5, 1 << 20, false},
		{"more than one read", 50_000, 1 << 20, false},
		{"over the cap", 50_000, 1000, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close() // held open: no EOF, as with a process that left the group
			data := bytes.Repeat([]byte("0123456789abcdef"), tt.size/16+1)[:tt.size]
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := r.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			truncated := pump(r, &got, tt.max, "stdout")
			want := data
			if tt.truncated {
				want = append(data[:tt.max:tt.max], TruncationMarker("stdout", tt.max)...)
			}
			if truncated != tt.truncated || !bytes.Equal(got.Bytes(), want) {
				t.Errorf("got %d bytes (truncated %v), want %d (truncated %v)", got.Len(), truncated, len(want), tt.truncated)
			}
		})
	}
}
