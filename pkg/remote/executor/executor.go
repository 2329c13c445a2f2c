// Package executor runs one qvm-remote command in dom0, contained as far as a
// plain process can be: the body is written to a 0700 script in a 0700
// runtime directory and run by bash with stdin from /dev/null, a clean
// environment, its own process group, a hard timeout that takes down the
// whole group, and capped output that is streamed to the caller as produced.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// DefaultPath is the fixed PATH of every command.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExitTimeout is the exit status of a command killed at its timeout, as
// timeout(1) reports it.
const ExitTimeout = 124

// Config is how every command runs.
type Config struct {
	// RuntimeDir holds the scripts while they run; it is created 0700.
	RuntimeDir string
	// Bash is the shell (absolute path).
	Bash string
	// Path, Lang and Home make the clean environment. Home "" means the
	// home directory of the user the command runs as.
	Path, Lang, Home string
	// PassEnv names variables copied from the daemon's environment (the
	// simulator needs its own; on Qubes it stays empty).
	PassEnv []string
	// Grace is the time between TERM and KILL.
	Grace time.Duration
	// MaxStdout and MaxStderr cap what is passed on of each stream.
	MaxStdout, MaxStderr int64
}

// Job is one command.
type Job struct {
	VM   string
	ID   proto.ID
	Body []byte
	// Timeout is the effective timeout (the caller applies the per-VM max).
	Timeout time.Duration
	// User runs the command as this user ("" = the daemon's own).
	User string
	// Stdout and Stderr receive the output as produced, capped and with a
	// truncation marker; calls for one stream are sequential.
	Stdout, Stderr io.Writer
}

// Outcome is how a command ended.
type Outcome struct {
	ExitCode                         int
	TimedOut                         bool
	StdoutTruncated, StderrTruncated bool
	Duration                         time.Duration
}

// TruncationMarker is appended to a stream cut at max bytes.
func TruncationMarker(stream string, max int64) string {
	return fmt.Sprintf("\n[qvm-remote: %s truncated after %d bytes]\n", stream, max)
}

// Run runs job and returns when the command and every process of its group
// have ended, or ctx is cancelled (which ends them the same way a timeout
// does, but is reported as an error).
func Run(ctx context.Context, c Config, job Job) (Outcome, error) {
	var out Outcome
	if err := prepareDir(c.RuntimeDir); err != nil {
		return out, err
	}
	cred, home, err := identity(job.User)
	if err != nil {
		return out, err
	}
	if c.Home != "" {
		home = c.Home
	}
	script := filepath.Join(c.RuntimeDir, string(job.ID)+".sh")
	if err := writeScript(script, job.Body, cred); err != nil {
		return out, err
	}
	defer os.Remove(script)

	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return out, err
	}
	defer devnull.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return out, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return out, err
	}
	defer outR.Close()
	defer errR.Close()

	args := []string{"bash", script}
	var extra []*os.File
	if cred != nil {
		f, err := os.Open(script)
		if err != nil {
			return out, err
		}
		defer f.Close()
		extra = []*os.File{f}
		args = []string{"bash", "/dev/fd/3"}
	}
	cmd := &exec.Cmd{
		Path:       c.Bash,
		Args:       args,
		ExtraFiles: extra,
		Env:        environ(c, job, home),
		Dir:        workDir(home),
		Stdin:      devnull,
		Stdout:     outW,
		Stderr:     errW,
		// Own group, so a timeout reaches every child, and no controlling
		// terminal of ours.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: cred},
	}
	start := time.Now()
	err = cmd.Start()
	outW.Close() // the child holds the write ends now
	errW.Close()
	if err != nil {
		return out, fmt.Errorf("start %s: %w", c.Bash, err)
	}
	pgid := cmd.Process.Pid

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); out.StdoutTruncated = pump(outR, job.Stdout, c.MaxStdout, "stdout") }()
	go func() { defer wg.Done(); out.StderrTruncated = pump(errR, job.Stderr, c.MaxStderr, "stderr") }()

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	timer := time.NewTimer(job.Timeout)
	defer timer.Stop()
	var werr error
	select {
	case werr = <-waited:
	case <-timer.C:
		out.TimedOut = true
		werr = stopGroup(pgid, c.Grace, waited)
	case <-ctx.Done():
		werr = stopGroup(pgid, c.Grace, waited)
	}
	// The leader is gone; whatever it left behind in its group goes too, so
	// no command outlives its result.
	reapGroup(pgid, c.Grace)
	// A process that left the group (setsid) may still hold the pipes; do
	// not wait for it beyond the grace period.
	deadline := time.Now().Add(c.Grace)
	outR.SetReadDeadline(deadline)
	errR.SetReadDeadline(deadline)
	wg.Wait()
	out.Duration = time.Since(start)

	switch {
	case out.TimedOut:
		out.ExitCode = ExitTimeout
	default:
		out.ExitCode = exitCode(werr)
	}
	if ctx.Err() != nil && !out.TimedOut {
		return out, ctx.Err()
	}
	return out, nil
}

// stopGroup sends TERM to the group, then KILL after grace if the leader
// has not exited, and returns the leader's wait error.
func stopGroup(pgid int, grace time.Duration, waited <-chan error) error {
	syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-waited:
		return err
	case <-t.C:
		syscall.Kill(-pgid, syscall.SIGKILL)
		return <-waited
	}
}

// reapGroup ends what is left of the group: TERM, then KILL once grace has
// passed with members still alive.
func reapGroup(pgid int, grace time.Duration) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // ESRCH: the group is empty
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 255
}

// pump copies r to w until EOF, passing at most max bytes and then the
// truncation marker once; the rest is read and dropped so the command never
// blocks on a full pipe. It reports whether the stream was truncated.
//
// At r's read deadline (a process outside the group still holds the pipe)
// it stops waiting, but still takes what the pipe holds: that is output the
// command wrote, and a read past the deadline refuses it, however long it
// has been there (a pump starved of CPU on a loaded machine read nothing
// before its deadline and lost a command's whole output).
func pump(r *os.File, w io.Writer, max int64, name string) bool {
	buf := make([]byte, 32<<10)
	var n int64
	truncated := false
	read := r.Read
	for {
		k, err := read(buf)
		if k > 0 && !truncated {
			chunk := buf[:k]
			if n+int64(k) > max {
				chunk = chunk[:max-n]
				truncated = true
			}
			n += int64(len(chunk))
			if len(chunk) > 0 && w != nil {
				w.Write(chunk)
			}
			if truncated && w != nil {
				io.WriteString(w, TruncationMarker(name, max))
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			read = readHeld(r)
			continue
		}
		if err != nil {
			return truncated
		}
	}
}

// drainMax bounds what readHeld takes: a pipe holds at most 1 MiB unless
// root raised fs.pipe-max-size, and a writer that keeps it full must not keep
// the pump reading.
const drainMax = 1 << 20

// readHeld returns a read of what r holds now, without its deadline and
// without waiting for more: io.EOF once it holds nothing (r is a pipe, which
// os.Pipe makes non-blocking).
func readHeld(r *os.File) func([]byte) (int, error) {
	rc, err := r.SyscallConn()
	if err == nil {
		err = r.SetReadDeadline(time.Time{})
	}
	left := drainMax
	return func(p []byte) (int, error) {
		if err != nil || left <= 0 {
			return 0, io.EOF
		}
		var n int
		var rerr error
		if cerr := rc.Read(func(fd uintptr) bool {
			for {
				n, rerr = syscall.Read(int(fd), p[:min(len(p), left)])
				if rerr != syscall.EINTR {
					return true // never wait for readiness
				}
			}
		}); cerr != nil || rerr != nil || n <= 0 {
			return 0, io.EOF
		}
		left -= n
		return n, nil
	}
}

func environ(c Config, job Job, home string) []string {
	env := []string{
		"PATH=" + c.Path,
		"HOME=" + home,
		"LANG=" + c.Lang,
		"QVM_REMOTE_VM=" + job.VM,
		"QVM_REMOTE_ID=" + string(job.ID),
	}
	for _, name := range c.PassEnv {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

func workDir(home string) string {
	if fi, err := os.Stat(home); err == nil && fi.IsDir() {
		return home
	}
	return "/"
}

// identity returns the credential and home of name ("" = ourselves).
func identity(name string) (*syscall.Credential, string, error) {
	self, err := user.Current()
	if name == "" || (err == nil && self.Username == name) {
		if err != nil {
			return nil, "/", nil
		}
		return nil, self.HomeDir, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, "", fmt.Errorf("run as %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, "", fmt.Errorf("run as %q: bad uid/gid %s/%s", name, u.Uid, u.Gid)
	}
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, u.HomeDir, nil
}

// prepareDir creates dir 0700 or checks that an existing one is a real
// directory of ours with no access for others.
func prepareDir(dir string) error {
	if dir == "" {
		return errors.New("executor: no runtime directory configured")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("runtime directory %s is not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("runtime directory %s is owned by uid %d, not us", dir, st.Uid)
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// writeScript creates the script exclusively (an existing file means an id
// collision or an attack, never something to overwrite). For a command run as
// another user the script is chowned to that user; it reaches the script
// through an inherited descriptor (see Run), since the 0700 directory stays
// closed to it.
func writeScript(path string, body []byte, cred *syscall.Credential) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o700)
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	_, err = f.Write(body)
	if err == nil && cred != nil {
		err = f.Chown(int(cred.Uid), int(cred.Gid))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("script: %w", err)
	}
	return nil
}
