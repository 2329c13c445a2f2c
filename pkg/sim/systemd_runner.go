package sim

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A runner is the part of systemd that runs one unit: `systemd --sim-run
// [--user USER] UNIT`, spawned by a start job in the domain's supervisor. It
// is a subreaper, so a unit's forked daemons stay below it and a stop kills
// them all (KillMode=control-group). It lives while the unit is active or
// activating, and for Restart= it restarts the main process itself.
//
// Type=notify is real sd_notify: NOTIFY_SOCKET names an abstract datagram
// socket ("@..."; abstract names have no sun_path length limit and stay in
// the domain's network namespace); READY=1 completes the start, STATUS= is
// shown by systemctl status. Any process of the unit may notify
// (NotifyAccess=all).
type runner struct {
	g       *manager
	u       *unit
	journal *os.File
	ready   *os.File // the start job's readiness pipe, until reported
	st      unitState

	mu       sync.Mutex
	children map[int]chan int // pid -> exit status (128+N for signal N)

	term    chan os.Signal
	stopped bool // a stop was requested
	notify  chan string
}

// runUnit is the body of the hidden `systemd --sim-run` mode.
func runUnit(c *Call, user, name string) int {
	g := &manager{m: c.Machine, domain: c.Domain, user: user}
	r := &runner{g: g, ready: c.Stdio.Out, children: map[int]chan int{}, term: make(chan os.Signal, 4)}
	signal.Ignore(syscall.SIGPIPE)
	defer r.report("failed resources")
	if err := os.MkdirAll(g.hostState(""), 0o755); err != nil {
		return 1
	}
	lock, err := os.OpenFile(g.hostState(name+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 1
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		r.report("done") // another runner has the unit
		return 0
	}
	u, _, err := g.loadUnit(name)
	if err != nil {
		return 1
	}
	r.u = u
	if r.journal, err = openJournal(g.journalPath(name)); err != nil {
		return 1
	}
	defer r.journal.Close()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		r.logf("set child subreaper: %v", err)
	}
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	signal.Notify(r.term, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go r.reap(chld)

	prev := g.readState(name)
	r.st = inactiveState()
	r.st.NRestarts = prev.NRestarts
	r.st.RunnerPID = os.Getpid()
	var starts []time.Time
	for {
		now := time.Now()
		kept := starts[:0]
		for _, t := range starts {
			if now.Sub(t) < u.StartLimitInterval {
				kept = append(kept, t)
			}
		}
		starts = append(kept, now)
		if u.StartLimitInterval > 0 && u.StartLimitBurst > 0 && len(starts) > u.StartLimitBurst {
			r.logf("Start request repeated too quickly.")
			r.finish("start-limit-hit")
			return 0
		}
		result, restart := r.cycle()
		if !restart || r.stopped {
			r.finish(result)
			return 0
		}
		r.set("activating", "auto-restart", func(s *unitState) { s.Result = result; s.MainPID = 0 })
		select {
		case <-time.After(u.RestartSec):
		case <-r.term:
			r.stopped = true
			r.finish("success")
			return 0
		}
		r.st.NRestarts++
		r.logf("Scheduled restart job, restart counter is at %d.", r.st.NRestarts)
	}
}

// report answers the start job once.
func (r *runner) report(line string) {
	if r.ready == nil {
		return
	}
	fmt.Fprintln(r.ready, line)
	releaseStdout(r.ready)
	r.ready = nil
}

// logf logs a message about the unit, prefixed with its name as systemd
// does for state changes; job messages ("Started ...") use logJob.
func (r *runner) logf(format string, a ...any) {
	r.g.journal(r.u.Name, r.u.Name+": "+fmt.Sprintf(format, a...))
}

func (r *runner) logJob(format string, a ...any) {
	r.g.journal(r.u.Name, fmt.Sprintf(format, a...))
}

func (r *runner) set(active, sub string, fn func(*unitState)) {
	r.st.ActiveState, r.st.SubState, r.st.Since = active, sub, time.Now()
	if active == "active" && r.st.ActiveEnter.IsZero() {
		r.st.ActiveEnter = r.st.Since
	}
	if fn != nil {
		fn(&r.st)
	}
	if err := r.g.writeState(r.u.Name, r.st); err != nil {
		r.logf("write state: %v", err)
	}
}

// finish records the final state and answers a start job still waiting.
func (r *runner) finish(result string) {
	r.st.MainPID = 0
	if result == "success" {
		r.set("inactive", "dead", func(s *unitState) { s.Result = "success" })
		r.logf("Deactivated successfully.")
		if r.stopped {
			// A stop job cancels the start job still waiting on us.
			r.report("failed canceled")
		}
		r.report("done")
		return
	}
	r.set("failed", "failed", func(s *unitState) { s.Result = result })
	r.logf("Failed with result '%s'.", result)
	r.report("failed " + result)
}

// cycle runs the unit once: start, run until the main process ends or a
// stop arrives, stop. It returns the result and whether Restart= applies.
func (r *runner) cycle() (result string, restart bool) {
	u := r.u
	r.st.InvocationID = randomID()
	r.st.ExecMainStatus, r.st.ExecMainCode = 0, ""
	r.st.ConditionResult, r.st.ConditionFailed = true, ""
	r.set("activating", "start-pre", nil)
	env, err := r.env()
	if err != nil {
		r.logf("Failed to load environment files: %v", err)
		r.logf("Failed to spawn 'start-pre' task: %v", err)
		return "resources", r.restartFor("resources")
	}
	if err := r.makeRuntimeDirs(); err != nil {
		r.logf("Failed to set up runtime directory: %v", err)
		return "resources", r.restartFor("resources")
	}
	if res := r.runControls(u.ExecStartPre, env, u.TimeoutStartSec, "start-pre"); res != "" {
		r.stopPost(env)
		return res, r.restartFor(res)
	}
	if r.stopRequested() {
		r.stopPost(env)
		return "success", false
	}
	r.logJob("Starting %s...", r.g.describe(u))
	if u.Type == "oneshot" {
		r.set("activating", "start", nil)
		if res := r.runControls(u.ExecStart, env, u.TimeoutStartSec, "start"); res != "" {
			r.stopPost(env)
			return res, r.restartFor(res)
		}
		if res := r.runControls(u.ExecStartPost, env, u.TimeoutStartSec, "start-post"); res != "" {
			r.stopPost(env)
			return res, r.restartFor(res)
		}
		r.logJob("Finished %s.", r.g.describe(u))
		if !u.RemainAfterExit {
			r.stopSequence(env, 0, nil)
			return "success", r.restartFor("success")
		}
		r.set("active", "exited", nil)
		r.report("done")
		<-r.term
		r.stopped = true
		r.stopSequence(env, 0, nil)
		return "success", false
	}

	cmd, err := r.g.parseExec(u, u.ExecStart[0], env)
	if err != nil && !errors.Is(err, errExecNotFound) {
		r.logf("%v", err)
		return "resources", false
	}
	var notifyEnv []string
	var nsock *net.UnixConn
	if u.Type == "notify" {
		nsock, err = r.listenNotify()
		if err != nil {
			r.logf("Failed to create notification socket: %v", err)
			return "resources", false
		}
		defer nsock.Close()
		notifyEnv = []string{"NOTIFY_SOCKET=" + nsock.LocalAddr().String()}
	}
	var pid int
	var exited chan int
	if err == nil {
		pid, exited, err = r.fork(cmd, append(env, notifyEnv...))
	}
	if err != nil {
		r.logf("%v", err)
		r.logf("Failed at step EXEC spawning %s: No such file or directory", cmd.argv[0])
		r.logf("Main process exited, code=exited, status=203/EXEC")
		r.st.ExecMainStatus, r.st.ExecMainCode = 203, "exited"
		if u.Type == "simple" {
			// simple: the start job is done once systemd forked.
			r.report("done")
		}
		r.stopPost(env)
		return "exit-code", r.restartFor("exit-code")
	}
	r.st.MainPID = pid
	if u.Type == "notify" {
		r.set("activating", "start", nil)
		timer := time.NewTimer(u.TimeoutStartSec)
		defer timer.Stop()
	wait:
		for {
			select {
			case msg := <-r.notify:
				if r.handleNotify(msg) {
					break wait
				}
			case code := <-exited:
				r.mainExited(code)
				r.stopPost(env)
				res := exitResult(code)
				if res == "success" {
					res = "protocol" // exited before READY=1
				}
				return res, r.restartFor(res)
			case <-timer.C:
				r.logf("start operation timed out. Terminating.")
				r.kill(pid, exited, u.TimeoutStopSec)
				r.stopPost(env)
				return "timeout", r.restartFor("timeout")
			case <-r.term:
				r.stopped = true
				r.stopSequence(env, pid, exited)
				return "success", false
			}
		}
	}
	r.set("active", "running", nil)
	if res := r.runControls(u.ExecStartPost, append(env, "MAINPID="+strconv.Itoa(pid)), u.TimeoutStartSec, "start-post"); res != "" {
		// Not started successfully: no ExecStop.
		r.kill(pid, exited, u.TimeoutStopSec)
		r.stopPost(env)
		return res, r.restartFor(res)
	}
	r.logJob("Started %s.", r.g.describe(u))
	r.report("done")
	for {
		select {
		case msg, ok := <-r.notify:
			if !ok {
				r.notify = nil
				continue
			}
			r.handleNotify(msg)
		case code := <-exited:
			r.mainExited(code)
			res := exitResult(code)
			r.stopSequence(env, 0, nil)
			return res, r.restartFor(res)
		case <-r.term:
			r.stopped = true
			r.stopSequence(env, pid, exited)
			return "success", false
		}
	}
}

func (r *runner) stopRequested() bool {
	select {
	case <-r.term:
		r.stopped = true
		return true
	default:
		return false
	}
}

// mainExited records the main process's status.
func (r *runner) mainExited(code int) {
	r.st.MainPID = 0
	if code > 128 && code < 128+65 {
		r.st.ExecMainStatus, r.st.ExecMainCode = code-128, "killed"
		r.logf("Main process exited, code=killed, status=%d/%s", code-128, sigName(code-128))
		return
	}
	r.st.ExecMainStatus, r.st.ExecMainCode = code, "exited"
	if code != 0 {
		r.logf("Main process exited, code=exited, status=%d/FAILURE", code)
	}
}

// exitResult maps a main process status to systemd's service result. A
// death by SIGHUP, SIGINT, SIGTERM or SIGPIPE is a clean exit.
func exitResult(code int) string {
	switch {
	case code == 0:
		return "success"
	case code == 128+int(unix.SIGHUP), code == 128+int(unix.SIGINT), code == 128+int(unix.SIGTERM), code == 128+int(unix.SIGPIPE):
		return "success"
	case code > 128 && code < 128+65:
		return "signal"
	}
	return "exit-code"
}

// restartFor applies the Restart= table of systemd.service(5).
func (r *runner) restartFor(result string) bool {
	if r.stopped {
		return false
	}
	switch r.u.Restart {
	case "always":
		return true
	case "on-success":
		return result == "success"
	case "on-failure":
		return result != "success"
	case "on-abnormal":
		return result == "signal" || result == "timeout" || result == "watchdog"
	case "on-abort":
		return result == "signal"
	}
	return false
}

// stopSequence is systemd's stop: ExecStop (with $MAINPID), TERM to the
// rest of the unit's processes, KILL after TimeoutStopSec, ExecStopPost,
// runtime directories removed.
func (r *runner) stopSequence(env []string, pid int, exited chan int) {
	u := r.u
	r.set("deactivating", "stop", nil)
	stopEnv := env
	if pid > 0 {
		stopEnv = append(append([]string(nil), env...), "MAINPID="+strconv.Itoa(pid))
	}
	if r.stopped {
		r.logJob("Stopping %s...", r.g.describe(u))
	}
	r.runControls(u.ExecStop, stopEnv, u.TimeoutStopSec, "stop")
	if pid > 0 {
		if code, timedOut := r.kill(pid, exited, u.TimeoutStopSec); timedOut {
			r.logf("State 'stop-sigterm' timed out. Killing.")
		} else {
			r.mainExited(code)
		}
	}
	r.killRest(u.TimeoutStopSec)
	r.stopPost(env)
	if r.stopped {
		r.logJob("Stopped %s.", r.g.describe(u))
	}
}

func (r *runner) stopPost(env []string) {
	r.runControls(r.u.ExecStopPost, env, r.u.TimeoutStopSec, "stop-post")
	r.killRest(r.u.TimeoutStopSec)
	r.removeRuntimeDirs()
}

// kill sends TERM to the main process group, then KILL after timeout.
func (r *runner) kill(pid int, exited chan int, timeout time.Duration) (code int, timedOut bool) {
	signalGroup(pid, unix.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case code = <-exited:
		return code, false
	case <-t.C:
	}
	signalGroup(pid, unix.SIGKILL)
	return <-exited, true
}

func signalGroup(pid int, sig unix.Signal) {
	if unix.Kill(-pid, sig) != nil {
		unix.Kill(pid, sig)
	}
	unix.Kill(-pid, unix.SIGCONT)
}

// killRest ends every remaining process of the unit: orphans adopted by
// the runner and whatever left the main process group. Other domains'
// supervisors (a VM started by the unit) are not the unit's.
func (r *runner) killRest(timeout time.Duration) { killDescendants(r.g.m, timeout) }

// runControls runs control commands (ExecStartPre, ...) one after the
// other; it returns "" or the failing result. A "-" prefix ignores failure.
func (r *runner) runControls(lines []string, env []string, timeout time.Duration, phase string) string {
	for _, line := range lines {
		cmd, err := r.g.parseExec(r.u, line, env)
		if errors.Is(err, errExecNotFound) {
			r.logf("%v", err)
			r.logf("Control process exited, code=exited, status=203/EXEC")
			if cmd.ignoreFailure {
				continue
			}
			return "exit-code"
		}
		if err != nil {
			r.logf("%v", err)
			return "resources"
		}
		pid, exited, err := r.fork(cmd, env)
		if err != nil {
			r.logf("Failed to execute %s: %v", cmd.argv[0], err)
			if cmd.ignoreFailure {
				continue
			}
			return "exit-code"
		}
		t := time.NewTimer(timeout)
		var code int
		select {
		case code = <-exited:
		case <-t.C:
			r.logf("Control process (%s) timed out. Terminating.", phase)
			r.kill(pid, exited, r.u.TimeoutStopSec)
			t.Stop()
			if cmd.ignoreFailure {
				continue
			}
			return "timeout"
		}
		t.Stop()
		if code != 0 {
			if r.u.Type == "oneshot" && phase == "start" {
				r.mainExited(code)
			} else {
				r.logf("Control process exited, code=exited, status=%d/FAILURE", code)
			}
			if cmd.ignoreFailure {
				continue
			}
			if code > 128 && code < 128+65 {
				return "signal"
			}
			return "exit-code"
		}
	}
	return ""
}

// fork starts cmd in its own process group with the journal as stdout and
// stderr; the exit status arrives on the returned channel.
func (r *runner) fork(cmd execCmd, env []string) (int, chan int, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer devnull.Close()
	dir := r.workDir()
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{devnull.Fd(), r.journal.Fd(), r.journal.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	ch := make(chan int, 1)
	// Holding mu across fork and registration keeps the reaper from missing
	// a child that exits at once.
	r.mu.Lock()
	pid, err := syscall.ForkExec(cmd.path, cmd.argv, attr)
	if err == nil {
		r.children[pid] = ch
	}
	r.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	return pid, ch, nil
}

func (r *runner) reap(chld chan os.Signal) {
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
			r.mu.Lock()
			ch := r.children[pid]
			delete(r.children, pid)
			r.mu.Unlock()
			if ch != nil {
				ch <- exitCode(ws)
			}
		}
		<-chld
	}
}

// workDir is WorkingDirectory= as a host path ("-" tolerates a missing
// one); the default is / for the system manager, home for a user manager.
func (r *runner) workDir() string {
	wd := r.u.WorkingDirectory
	optional := strings.HasPrefix(wd, "-")
	wd = strings.TrimPrefix(wd, "-")
	home := r.g.m.Path(r.g.domain, UserHome(r.userName()))
	switch {
	case wd == "~":
		return home
	case wd == "" && r.g.user != "":
		return home
	case wd == "":
		return r.g.m.Root(r.g.domain)
	}
	p := r.g.resolve(wd)
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return p
	}
	if !optional {
		r.logf("Changing to the requested working directory failed: No such file or directory")
	}
	return r.g.m.Root(r.g.domain)
}

// userName is the user the unit's processes run as.
func (r *runner) userName() string {
	switch {
	case r.u.User != "":
		return r.u.User
	case r.g.user != "":
		return r.g.user
	}
	return "root"
}

// env builds the unit's environment: the domain's (with the unit's user),
// the manager's variables, Environment=, then EnvironmentFile= (files win,
// as in systemd.exec(5)). A system unit without User= gets no HOME, USER or
// LOGNAME, as under systemd.
func (r *runner) env() ([]string, error) {
	u := r.u
	user := r.userName()
	base := r.g.m.spawnEnv(r.g.domain, user)
	if r.g.user == "" && u.User == "" {
		var kept []string
		for _, kv := range base {
			k, _, _ := strings.Cut(kv, "=")
			if k != "HOME" && k != "USER" && k != "LOGNAME" {
				kept = append(kept, kv)
			}
		}
		base = kept
	}
	extra := []string{"INVOCATION_ID=" + r.st.InvocationID}
	if r.g.user != "" {
		extra = append(extra, "XDG_RUNTIME_DIR="+r.g.m.Path(r.g.domain, r.g.runtimeDir()))
	}
	if dirs := r.runtimeDirs(); len(dirs) > 0 {
		extra = append(extra, "RUNTIME_DIRECTORY="+strings.Join(dirs, ":"))
	}
	extra = append(extra, u.Environment...)
	for _, ef := range u.EnvironmentFiles {
		optional := strings.HasPrefix(ef, "-")
		ef = strings.TrimPrefix(ef, "-")
		kvs, err := readEnvFile(r.g.resolve(ef))
		if err != nil {
			if optional && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("%s: %w", ef, err)
		}
		extra = append(extra, kvs...)
	}
	return mergeEnv(base, extra...), nil
}

// readEnvFile parses KEY=VALUE lines (# and ; comments, quoted values).
func readEnvFile(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out = append(out, strings.TrimSpace(k)+"="+v)
	}
	return out, sc.Err()
}

// runtimeDirs are the host paths of RuntimeDirectory= (under /run, or the
// user's runtime directory).
func (r *runner) runtimeDirs() []string {
	var out []string
	for _, d := range r.u.RuntimeDirectory {
		out = append(out, r.g.m.Path(r.g.domain, filepath.Join(r.g.runtimeDir(), d)))
	}
	return out
}

func (r *runner) makeRuntimeDirs() error {
	for _, d := range r.runtimeDirs() {
		if err := os.MkdirAll(d, r.u.RuntimeDirMode); err != nil {
			return err
		}
		if err := os.Chmod(d, r.u.RuntimeDirMode); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) removeRuntimeDirs() {
	for _, d := range r.runtimeDirs() {
		os.RemoveAll(d)
	}
}

// listenNotify opens the unit's NOTIFY_SOCKET.
func (r *runner) listenNotify() (*net.UnixConn, error) {
	name := "@qsim-notify-" + r.g.m.Info.ID + "-" + randomID()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	r.notify = make(chan string, 16)
	go func() {
		defer close(r.notify)
		buf := make([]byte, 4096)
		for {
			n, _, err := c.ReadFromUnix(buf)
			if err != nil {
				return
			}
			r.notify <- string(buf[:n])
		}
	}()
	return c, nil
}

// handleNotify applies an sd_notify message; it reports READY=1.
func (r *runner) handleNotify(msg string) bool {
	ready := false
	for _, line := range strings.Split(msg, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "READY":
			ready = v == "1"
		case "STATUS":
			r.st.StatusText = v
			r.set(r.st.ActiveState, r.st.SubState, nil)
		case "MAINPID":
			if pid, err := strconv.Atoi(v); err == nil {
				r.st.MainPID = pid
			}
		case "STOPPING":
			if v == "1" {
				r.set("deactivating", "stop", nil)
			}
		}
	}
	return ready
}

func randomID() string {
	var b [16]byte
	randomBytes(b[:])
	return hex.EncodeToString(b[:])
}

func sigName(n int) string {
	s := unix.SignalName(syscall.Signal(n))
	return strings.TrimPrefix(s, "SIG")
}

// execCmd is a parsed Exec*= line.
type execCmd struct {
	path          string   // host path to execute
	argv          []string // argv as the process sees it
	ignoreFailure bool     // "-" prefix
}

// parseExec parses an Exec*= line: prefixes (- @ : + !), %-specifiers,
// quoting, $VAR (split into words) and ${VAR} (one word) from env, and
// the executable: an absolute path inside the domain's root, else a
// simulated tool of that name (dom0's /usr/bin/qvm-start is the simulator's
// qvm-start), else the host's (/bin/sh); a bare name is searched in
// systemd's fixed path /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin.
func (g *manager) parseExec(u *unit, line string, env []string) (execCmd, error) {
	var c execCmd
	argv0Sep, noEnv := false, false
	for len(line) > 0 && strings.IndexByte("-@:+!", line[0]) >= 0 {
		switch line[0] {
		case '-':
			c.ignoreFailure = true
		case '@':
			argv0Sep = true
		case ':':
			noEnv = true
		}
		line = line[1:]
	}
	words, err := splitQuoted(expandSpecifiers(line, g.specifiers(u)))
	if err != nil || len(words) == 0 {
		return c, fmt.Errorf("%s: invalid command line %q", u.Name, line)
	}
	if !noEnv {
		words = expandEnvWords(words, env)
	}
	exe := words[0]
	c.argv = words
	if argv0Sep {
		if len(words) < 2 {
			return c, fmt.Errorf("%s: invalid command line %q", u.Name, line)
		}
		c.argv = words[1:]
	}
	c.path, err = g.resolveExe(exe)
	return c, err
}

// expandEnvWords applies systemd's variable substitution: a word that is
// exactly $NAME becomes the value split into words, ${NAME} and $NAME inside
// a word are replaced in place, "$$" is a literal "$".
func expandEnvWords(words []string, env []string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, "$") && isEnvName(w[1:]) {
			out = append(out, strings.Fields(envValue(env, w[1:]))...)
			continue
		}
		out = append(out, expandEnvString(w, env))
	}
	return out
}

func expandEnvString(w string, env []string) string {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != '$' || i+1 == len(w) {
			b.WriteByte(w[i])
			continue
		}
		switch {
		case w[i+1] == '$':
			b.WriteByte('$')
			i++
		case w[i+1] == '{':
			end := strings.IndexByte(w[i:], '}')
			if end < 0 {
				b.WriteByte(w[i])
				continue
			}
			b.WriteString(envValue(env, w[i+2:i+end]))
			i += end
		default:
			j := i + 1
			for j < len(w) && isEnvName(w[i+1:j+1]) {
				j++
			}
			if j == i+1 {
				b.WriteByte(w[i])
				continue
			}
			b.WriteString(envValue(env, w[i+1:j]))
			i = j - 1
		}
	}
	return b.String()
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (g *manager) resolveExe(p string) (string, error) {
	cands := []string{p}
	if !strings.HasPrefix(p, "/") {
		if strings.Contains(p, "/") {
			return "", fmt.Errorf("Neither a valid executable name nor an absolute path: %s", p)
		}
		cands = nil
		for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"} {
			cands = append(cands, d+"/"+p)
		}
	}
	for _, c := range cands {
		if h, err := g.m.ResolveInRoot(g.domain, c); err == nil && isExecutable(h) {
			return h, nil
		}
	}
	for _, c := range cands {
		if tool := filepath.Join(g.toolDir(), filepath.Base(c)); isExecutable(tool) {
			return tool, nil
		}
		if isExecutable(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("Failed to locate executable %s: %w", p, errExecNotFound)
}

// errExecNotFound is an Exec*= executable missing from domain and host.
var errExecNotFound = errors.New("No such file or directory")

func syscallSignal(n int) unix.Signal { return unix.Signal(n) }
