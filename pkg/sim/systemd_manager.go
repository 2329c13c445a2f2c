package sim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The simulated systemd. A domain has a system manager and one user manager
// per user; neither is a process. Each started unit gets its own runner (the
// `systemd` tool in its hidden --sim-run mode) spawned in the domain's
// supervisor and tagged with the unit: the runner forks the unit's commands,
// applies Type=, Restart= and the stop sequence, and records the unit state
// in the manager's directory under the domain's /run (so, like systemd's
// runtime state, it is gone at the next boot):
//
//	/run/systemd-sim/system/             system manager
//	/run/systemd-sim/user/USER/          user manager of USER
//	    NAME.state   unit state (JSON), written by the runner
//	    NAME.lock    flock held by the runner for its whole life: held <=> the
//	                 unit has a runner (active, activating, deactivating)
//	    NAME.job     flock serialising start and stop jobs of NAME
//	    loaded/NAME.json  the unit as loaded (systemd's in-memory unit): edits
//	                 on disk take effect after daemon-reload, as in systemd
//	    running      (user managers) the manager has been started
//
// Unit output goes to /var/log/journal-sim/[user/USER/]NAME.log, which is
// what journalctl -u prints.

// stateRoot is the domain path of the managers' runtime state.
const stateRoot = "/run/systemd-sim"

// manager is the system manager (user == "") or a user manager of a domain.
type manager struct {
	m      *Machine
	domain string
	user   string
}

func systemManager(m *Machine, domain string) *manager { return &manager{m: m, domain: domain} }

func userManager(m *Machine, domain, user string) *manager {
	return &manager{m: m, domain: domain, user: user}
}

// unitDirs is the unit search path (domain paths).
func (g *manager) unitDirs() []string {
	if g.user == "" {
		return unitSearchPath
	}
	out := make([]string, len(userUnitSearchPath))
	for i, d := range userUnitSearchPath {
		out[i] = strings.Replace(d, "~", UserHome(g.user), 1)
	}
	return out
}

// configDir is where enable writes its symlinks.
func (g *manager) configDir() string { return g.unitDirs()[0] }

// runtimeDir is %t: /run, or the user's XDG_RUNTIME_DIR.
func (g *manager) runtimeDir() string {
	if g.user == "" {
		return "/run"
	}
	return fmt.Sprintf("/run/user/%d", uidOf(g.user))
}

func (g *manager) stateDir() string {
	if g.user == "" {
		return stateRoot + "/system"
	}
	return stateRoot + "/user/" + g.user
}

// hostState is the host path of a file in the manager's state directory.
func (g *manager) hostState(name string) string {
	return g.m.Path(g.domain, g.stateDir()+"/"+name)
}

func (g *manager) journalPath(name string) string {
	if g.user == "" {
		return g.m.Path(g.domain, "/var/log/journal-sim/"+name+".log")
	}
	return g.m.Path(g.domain, "/var/log/journal-sim/user/"+g.user+"/"+name+".log")
}

// tag labels the unit's runner in the supervisor's process list.
func (g *manager) tag(name string) string {
	if g.user == "" {
		return "unit:" + name
	}
	return "unit:" + g.user + "@" + name
}

// flag is the systemctl option naming this manager in messages.
func (g *manager) flag() string {
	if g.user == "" {
		return ""
	}
	return "--user "
}

// bootTargets are the targets a boot reaches, in order.
func (g *manager) bootTargets() []string {
	if g.user == "" {
		return []string{"sysinit.target", "basic.target", "multi-user.target", "graphical.target"}
	}
	return []string{"basic.target", "default.target"}
}

// resolve maps a domain path to a host path; /var/run is /run on every
// system Qubes runs (the qubes-service pattern uses /var/run/qubes-service).
func (g *manager) resolve(p string) string {
	if _, ok := g.m.Unmap(g.domain, p); ok && strings.HasPrefix(p, g.m.Root(g.domain)+"/") {
		// Already a host path (a %h or %t specifier).
		return p
	}
	if p == "/var/run" || strings.HasPrefix(p, "/var/run/") {
		p = "/run" + strings.TrimPrefix(p, "/var/run")
	}
	h, err := g.m.ResolveInRoot(g.domain, p)
	if err != nil {
		return g.m.Path(g.domain, p)
	}
	return h
}

// unitState is a unit's runtime state, as systemctl show reports it.
type unitState struct {
	ActiveState     string    `json:"active_state"`
	SubState        string    `json:"sub_state"`
	Result          string    `json:"result"`
	MainPID         int       `json:"main_pid,omitempty"`
	ExecMainStatus  int       `json:"exec_main_status"`
	ExecMainCode    string    `json:"exec_main_code,omitempty"` // exited, killed
	NRestarts       int       `json:"n_restarts"`
	Since           time.Time `json:"since"`
	ActiveEnter     time.Time `json:"active_enter,omitempty"`
	ConditionResult bool      `json:"condition_result"`
	ConditionFailed string    `json:"condition_failed,omitempty"`
	ConditionTime   time.Time `json:"condition_time,omitempty"`
	StatusText      string    `json:"status_text,omitempty"`
	RunnerPID       int       `json:"runner_pid,omitempty"`
	InvocationID    string    `json:"invocation_id,omitempty"`
}

func inactiveState() unitState {
	return unitState{ActiveState: "inactive", SubState: "dead", Result: "success", ConditionResult: true}
}

func (g *manager) readState(name string) unitState {
	st := inactiveState()
	b, err := os.ReadFile(g.hostState(name + ".state"))
	if err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func (g *manager) writeState(name string, st unitState) error {
	dir := g.hostState("")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.Marshal(st)
	return WriteFileAtomic(g.hostState(name+".state"), b, 0o644)
}

// runnerAlive reports whether name has a runner: it holds NAME.lock.
func (g *manager) runnerAlive(name string) bool {
	f, err := os.Open(g.hostState(name + ".lock"))
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false
	}
	return errors.Is(err, unix.EWOULDBLOCK)
}

// currentState is the state to report: a state file claiming a live unit
// whose runner is gone (killed from outside) reads as failed.
func (g *manager) currentState(name string) unitState {
	st := g.readState(name)
	switch st.ActiveState {
	case "active", "activating", "deactivating", "reloading":
		if !g.runnerAlive(name) {
			st.ActiveState, st.SubState, st.Result = "failed", "failed", "signal"
			st.MainPID = 0
		}
	}
	return st
}

// jobLock serialises jobs on one unit; the returned func releases it.
func (g *manager) jobLock(name string) (func(), error) {
	if err := os.MkdirAll(g.hostState(""), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(g.hostState(name+".job"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// loadUnit returns the unit as the manager has it loaded. systemd keeps a
// loaded unit until daemon-reload, so later edits on disk are not seen
// (changed reports them, for systemctl's warning) — except for a unit that
// is inactive and not enabled, which systemd garbage-collects and so loads
// afresh at its next use.
func (g *manager) loadUnit(name string) (u *unit, changed bool, err error) {
	cache := g.hostState("loaded/" + name + ".json")
	if b, err := os.ReadFile(cache); err == nil {
		var c unit
		if json.Unmarshal(b, &c) == nil {
			c.unpackDeps()
			st := g.currentState(name)
			collectable := st.ActiveState == "inactive" && !g.enabled(name)
			if !collectable {
				frag, drop, ferr := g.findUnit(name)
				changed = ferr != nil || g.fingerprint(append([]string{frag}, drop...)) != c.Fingerprint
				return &c, changed, nil
			}
		}
	}
	u, err = g.readUnit(name)
	if err != nil {
		return nil, false, err
	}
	// systemd logs what it disliked when it loads the unit.
	for _, w := range u.Warnings {
		g.journal(name, w)
	}
	g.cacheUnit(u)
	return u, false, nil
}

func (g *manager) cacheUnit(u *unit) {
	cache := g.hostState("loaded/" + u.Name + ".json")
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return
	}
	b, _ := json.Marshal(u)
	_ = WriteFileAtomic(cache, b, 0o644)
}

// daemonReload drops every loaded unit: the next use reads the disk.
func (g *manager) daemonReload() error {
	err := os.RemoveAll(g.hostState("loaded"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// enabled reports whether a .wants/ or .requires/ directory of any unit
// directory links name.
func (g *manager) enabled(name string) bool {
	return len(g.enablementLinks(name)) > 0
}

// enablementLinks lists the domain paths of symlinks named name in the
// .wants/.requires directories of the unit path.
func (g *manager) enablementLinks(name string) []string {
	var out []string
	for _, d := range g.unitDirs() {
		host := g.resolve(d)
		ents, err := os.ReadDir(host)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() || !(strings.HasSuffix(e.Name(), ".wants") || strings.HasSuffix(e.Name(), ".requires")) {
				continue
			}
			if _, err := os.Lstat(filepath.Join(host, e.Name(), name)); err == nil {
				out = append(out, filepath.Join(d, e.Name(), name))
			}
		}
	}
	return out
}

// wantedBy lists the units linked from target's .wants/.requires
// directories, sorted.
func (g *manager) wantedBy(target string) []string {
	seen := map[string]bool{}
	for _, d := range g.unitDirs() {
		for _, kind := range []string{".wants", ".requires"} {
			ents, err := os.ReadDir(g.resolve(filepath.Join(d, target+kind)))
			if err != nil {
				continue
			}
			for _, e := range ents {
				seen[e.Name()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// checkConditions evaluates u's conditions in the domain: every plain
// condition must hold and, if there are triggering ("|") ones, at least one
// of them. It returns the first failing condition.
func (g *manager) checkConditions(u *unit) (ok bool, failed *condition) {
	anyTrigger, triggerOK := false, false
	var firstTrigger *condition
	for i := range u.Conditions {
		c := &u.Conditions[i]
		res := g.evalCondition(*c) != c.Negate
		if c.Trigger {
			anyTrigger = true
			triggerOK = triggerOK || res
			if firstTrigger == nil {
				firstTrigger = c
			}
			continue
		}
		if !res {
			return false, c
		}
	}
	if anyTrigger && !triggerOK {
		return false, firstTrigger
	}
	return true, nil
}

func (g *manager) evalCondition(c condition) bool {
	switch c.Key {
	case "PathExists":
		_, err := os.Stat(g.resolve(c.Arg))
		return err == nil
	case "PathExistsGlob":
		m, _ := filepath.Glob(g.resolve(c.Arg))
		return len(m) > 0
	case "PathIsDirectory":
		fi, err := os.Stat(g.resolve(c.Arg))
		return err == nil && fi.IsDir()
	case "PathIsSymbolicLink":
		fi, err := os.Lstat(g.m.Path(g.domain, c.Arg))
		return err == nil && fi.Mode()&os.ModeSymlink != 0
	case "FileNotEmpty":
		fi, err := os.Stat(g.resolve(c.Arg))
		return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
	case "DirectoryNotEmpty":
		ents, err := os.ReadDir(g.resolve(c.Arg))
		return err == nil && len(ents) > 0
	case "FileIsExecutable":
		return isExecutable(g.resolve(c.Arg))
	case "KernelCommandLine":
		// The simulated domains boot with an empty kernel command line.
		return false
	case "User":
		u := g.user
		if u == "" {
			u = "root"
		}
		return c.Arg == u || c.Arg == fmt.Sprint(uidOf(u)) || (c.Arg == "@system" && u == "root")
	case "Host":
		return c.Arg == g.domain
	case "Virtualization":
		// Qubes VMs run on Xen; dom0 is the Xen host.
		switch c.Arg {
		case "xen", "vm", "yes", "true", "1":
			return g.domain != Dom0
		case "no", "false", "0":
			return g.domain == Dom0
		}
		return false
	}
	return true
}

// spawner starts a process in the domain: (*Supervisor).Spawn inside the
// supervisor, (*Machine).Spawn elsewhere.
type spawner func(SpawnRequest) (*Process, error)

func (g *manager) spawner() spawner {
	return func(r SpawnRequest) (*Process, error) { return g.m.Spawn(g.domain, r) }
}

// jobError is a start job that did not end in "done".
type jobError struct {
	unit   string
	result string // failed result (exit-code, timeout, ...), "dependency", "assert"
	dep    string // the unit whose failure caused a dependency error
}

func (e *jobError) Error() string { return e.unit + ": job failed: " + e.result }

// unitError is a unit that cannot be started at all.
type unitError struct {
	unit string
	err  error // errUnitNotFound, errUnitMasked, errBadSetting, errUnsupported
}

func (e *unitError) Error() string { return e.unit + ": " + e.err.Error() }
func (e *unitError) Unwrap() error { return e.err }

var (
	errBadSetting  = errors.New("bad unit file setting")
	errUnsupported = errors.New("unit type not supported by the simulator")
)

// startUnit runs a start job for name, pulling in its Requires= and Wants=
// first (start order approximates After=). It returns when the job is done:
// a simple/exec unit forked, a notify unit sent READY=1, a oneshot finished.
func (g *manager) startUnit(name string, spawn spawner, seen map[string]bool) error {
	if seen[name] {
		return nil
	}
	seen[name] = true
	if strings.HasSuffix(name, ".target") {
		return g.startTarget(name, spawn, seen)
	}
	if !strings.HasSuffix(name, ".service") {
		return &unitError{name, errUnsupported}
	}
	u, _, err := g.loadUnit(name)
	if err != nil {
		return &unitError{name, err}
	}
	if u.Bad != "" {
		g.journal(name, name+": "+u.Bad)
		return &unitError{name, errBadSetting}
	}
	after := map[string]bool{}
	for _, a := range u.After {
		after[a] = true
	}
	for _, dep := range u.Requires {
		err := g.startUnit(normalizeUnitName(dep), spawn, seen)
		var ue *unitError
		if errors.As(err, &ue) && errors.Is(err, errUnitNotFound) {
			return err
		}
		if err != nil || (after[dep] && g.currentState(normalizeUnitName(dep)).ActiveState == "failed") {
			g.journal(name, "Dependency failed for "+g.describe(u)+".")
			return &jobError{unit: name, result: "dependency", dep: dep}
		}
	}
	for _, dep := range u.Wants {
		if err := g.startUnit(normalizeUnitName(dep), spawn, seen); err != nil {
			g.journal(name, fmt.Sprintf("%s: wanted unit %s: %v", name, dep, err))
		}
	}
	release, err := g.jobLock(name)
	if err != nil {
		return err
	}
	defer release()
	if g.runnerAlive(name) {
		return nil
	}
	prev := g.readState(name)
	if ok, failed := g.checkConditions(u); !ok {
		now := time.Now()
		if failed.Assert {
			g.journal(name, fmt.Sprintf("%s: Assertion failed: %s was not met", name, failed))
			return &jobError{unit: name, result: "assert"}
		}
		g.journal(name, fmt.Sprintf("%s was skipped because of an unmet condition check (%s).", g.describe(u), failed))
		st := inactiveState()
		if prev.ActiveState == "failed" {
			st = prev
		}
		st.ConditionResult, st.ConditionFailed, st.ConditionTime, st.Since = false, failed.String(), now, now
		st.NRestarts = prev.NRestarts
		return g.writeState(name, st)
	}
	return g.spawnRunner(u, spawn)
}

// startTarget starts the units a target pulls in (targets have no state of
// their own in the simulator).
func (g *manager) startTarget(name string, spawn spawner, seen map[string]bool) error {
	var errs []error
	for _, n := range g.orderUnits(g.wantedBy(name)) {
		if err := g.startUnit(n, spawn, seen); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// spawnRunner starts u's runner and waits for its report on the readiness
// pipe: "done" or "failed RESULT".
func (g *manager) spawnRunner(u *unit, spawn spawner) error {
	rd, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	defer rd.Close()
	argv := []string{filepath.Join(g.toolDir(), "systemd"), "--sim-run"}
	if g.user != "" {
		argv = append(argv, "--user", g.user)
	}
	argv = append(argv, u.Name)
	user := g.user
	if user == "" {
		user = "root"
	}
	p, err := spawn(SpawnRequest{Argv: argv, User: user, Stdout: wr, Tag: g.tag(u.Name), Dir: "/"})
	wr.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", u.Name, err)
	}
	p.Release()
	line, _ := bufio.NewReader(rd).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "done":
		return nil
	case strings.HasPrefix(line, "failed "):
		return &jobError{unit: u.Name, result: strings.TrimPrefix(line, "failed ")}
	}
	return &jobError{unit: u.Name, result: "resources"}
}

// toolDir holds the simulated tools of the domain.
func (g *manager) toolDir() string {
	if g.domain == Dom0 {
		return g.m.Dom0BinDir()
	}
	return g.m.VMBinDir()
}

// stopUnit stops name's runner (ExecStop, TERM, KILL after TimeoutStopSec,
// ExecStopPost all happen in the runner) and waits until it is gone. A stop
// job cancels a pending start job, as in systemd: a start job of a unit that
// never gets ready (a notify unit crash-looping with a long RestartSec) holds
// the job lock for as long as the runner lives, so the runner is told to stop
// first, which ends the start job and frees the lock.
func (g *manager) stopUnit(name string) error {
	release, err := g.jobLockPreempt(name)
	if err != nil {
		return err
	}
	defer release()
	return g.stopLocked(name)
}

// jobLockPreempt takes name's job lock, stopping a runner whose pending
// start job holds it. The wait is bounded like a stop: past TimeoutStopSec
// (twice, plus a margin) the runner and its processes are killed.
func (g *manager) jobLockPreempt(name string) (func(), error) {
	if err := os.MkdirAll(g.hostState(""), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(g.hostState(name+".job"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	var deadline time.Time
	termed, killed := 0, false
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, err
		}
		if pid := g.runnerPID(name); pid > 0 {
			if deadline.IsZero() {
				deadline = time.Now().Add(g.stopBound(name))
			}
			switch {
			case time.Now().After(deadline) && !killed:
				for _, p := range descendants(pid, g.m) {
					unix.Kill(p, unix.SIGKILL)
				}
				unix.Kill(pid, unix.SIGKILL)
				killed = true
			case termed != pid:
				unix.Kill(pid, unix.SIGTERM)
				termed = pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runnerPID is the pid of name's live runner, or 0. The pid comes from the
// state file, which a new runner writes only after it has the unit lock: it
// is used only if that process is this unit's runner, never a recycled pid.
func (g *manager) runnerPID(name string) int {
	if !g.runnerAlive(name) {
		return 0
	}
	pid := g.readState(name).RunnerPID
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) < 3 || args[len(args)-1] != name || !slices.Contains(args, "--sim-run") {
		return 0
	}
	if g.user != "" && !slices.Contains(args, g.user) {
		return 0
	}
	return pid
}

// stopBound is how long a stop of name may take before its runner counts as
// hung: TimeoutStopSec for ExecStop and again for the main process, plus a
// margin.
func (g *manager) stopBound(name string) time.Duration {
	timeout := defaultTimeout
	if u, _, err := g.loadUnit(name); err == nil {
		timeout = u.TimeoutStopSec
	}
	if timeout > time.Hour {
		return 365 * 24 * time.Hour
	}
	return 2*timeout + 5*time.Second
}

func (g *manager) stopLocked(name string) error {
	if !g.runnerAlive(name) {
		return nil
	}
	pid := g.runnerPID(name)
	if pid > 0 {
		unix.Kill(pid, unix.SIGTERM)
	}
	deadline := time.Now().Add(g.stopBound(name))
	for g.runnerAlive(name) {
		if pid == 0 {
			// Started after our check: the state file names it now.
			if pid = g.runnerPID(name); pid > 0 {
				unix.Kill(pid, unix.SIGTERM)
			}
		}
		if time.Now().After(deadline) && pid > 0 {
			for _, p := range descendants(pid, g.m) {
				unix.Kill(p, unix.SIGKILL)
			}
			unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// liveUnits lists the units that have a runner, most recently activated
// first (the order to stop them in).
func (g *manager) liveUnits() []string {
	ents, err := os.ReadDir(g.hostState(""))
	if err != nil {
		return nil
	}
	type lu struct {
		name string
		at   time.Time
	}
	var live []lu
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || !g.runnerAlive(n) {
			continue
		}
		st := g.readState(n)
		at := st.ActiveEnter
		if at.IsZero() {
			at = st.Since
		}
		live = append(live, lu{n, at})
	}
	sort.SliceStable(live, func(i, j int) bool { return live[i].at.After(live[j].at) })
	out := make([]string, len(live))
	for i, l := range live {
		out[i] = l.name
	}
	return out
}

// orderUnits sorts names so that a unit comes after the units it is
// ordered After= (and before those it is Before=); ties keep name order.
// Unloadable units keep their place: starting them reports the error.
func (g *manager) orderUnits(names []string) []string {
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	before := map[string][]string{} // n -> units that must start before n
	for _, n := range names {
		u, _, err := g.loadUnit(n)
		if err != nil {
			continue
		}
		for _, a := range u.After {
			if a = normalizeUnitName(a); set[a] {
				before[n] = append(before[n], a)
			}
		}
		for _, b := range u.Before {
			if b = normalizeUnitName(b); set[b] {
				before[b] = append(before[b], n)
			}
		}
	}
	var out []string
	done := map[string]bool{}
	visiting := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if done[n] || visiting[n] {
			return // a cycle: systemd breaks it too (by dropping a job)
		}
		visiting[n] = true
		deps := append([]string(nil), before[n]...)
		sort.Strings(deps)
		for _, d := range deps {
			visit(d)
		}
		visiting[n] = false
		done[n] = true
		out = append(out, n)
	}
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		visit(n)
	}
	return out
}

// boot starts what the manager's boot targets pull in, target by target.
// before, if not nil, is called before each target's units are started: the
// VM's rc.local hooks and a user manager's readiness hang on it.
func (g *manager) boot(spawn spawner, before func(target string)) {
	seen := map[string]bool{}
	for _, t := range g.bootTargets() {
		if before != nil {
			before(t)
		}
		for _, n := range g.orderUnits(g.wantedBy(t)) {
			if err := g.startUnit(n, spawn, seen); err != nil {
				g.journal(n, fmt.Sprintf("%s: boot: %v", n, err))
			}
		}
	}
}

// shutdown stops every live unit, the most recently started first.
func (g *manager) shutdown() {
	for _, n := range g.liveUnits() {
		_ = g.stopUnit(n)
	}
}

// userManagerUp reports whether the user manager of g.user has been
// started (by linger at boot, loginctl enable-linger, or systemctl --user).
func (g *manager) userManagerUp() bool {
	_, err := os.Stat(g.hostState("running"))
	return err == nil
}

// managerTag labels the process running a user manager's boot jobs: it
// stands for user@UID.service.
func (g *manager) managerTag() string { return fmt.Sprintf("user@%d.service", uidOf(g.user)) }

// ensureUserManager starts the user manager if it is not up, as logind
// starts user@UID.service: its boot jobs run in their own process in the
// domain (`systemd --sim-user-manager USER`), so no caller is held by a
// unit that never gets ready. With wait, it returns once basic.target's
// units are started: systemd reports a user manager ready there, and that
// is what opening a session (pam_systemd) waits for; default.target's units
// start in the background. logind's enable-linger, and linger at boot,
// do not wait at all.
//
// Qubes opens a logind session for every qrexec call, so a `systemctl
// --user` run in a domain always has one; the simulator does not model
// sessions closing, so a user manager stays up until the domain stops
// (without linger, the real one stops shortly after the user's last session
// ends).
func (g *manager) ensureUserManager(spawn spawner, wait bool) error {
	if g.user == "" || g.userManagerUp() {
		return nil
	}
	if err := os.MkdirAll(g.hostState(""), 0o755); err != nil {
		return err
	}
	marker := g.hostState("running")
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil // someone else is starting it
	}
	if err != nil {
		return err
	}
	f.Close()
	if err := os.MkdirAll(g.m.Path(g.domain, g.runtimeDir()), 0o700); err != nil {
		os.Remove(marker)
		return err
	}
	req := SpawnRequest{Argv: []string{filepath.Join(g.toolDir(), "systemd"), "--sim-user-manager", g.user},
		User: g.user, Tag: g.managerTag(), Dir: "/"}
	var rd *os.File
	if wait {
		var wr *os.File
		if rd, wr, err = os.Pipe(); err != nil {
			os.Remove(marker)
			return err
		}
		defer rd.Close()
		req.Stdout = wr
	}
	p, err := spawn(req)
	if req.Stdout != nil {
		req.Stdout.Close()
	}
	if err != nil {
		os.Remove(marker)
		return fmt.Errorf("start %s: %w", g.managerTag(), err)
	}
	p.Release()
	if rd != nil {
		// "ready", or EOF if the manager died first.
		_, _ = bufio.NewReader(rd).ReadString('\n')
	}
	return nil
}

// runUserManager is the body of `systemd --sim-user-manager USER`: the
// user manager's boot jobs. fd 1 is the readiness pipe of a waiting
// session, if any.
func runUserManager(c *Call, user string) int {
	signal.Ignore(syscall.SIGPIPE)
	g := userManager(c.Machine, c.Domain, user)
	ready := c.Stdio.Out
	g.boot(g.spawner(), func(target string) {
		if target == "default.target" && ready != nil {
			fmt.Fprintln(ready, "ready")
			releaseStdout(ready)
			ready = nil
		}
	})
	return 0
}

// releaseStdout closes a readiness pipe that is fd 1 and points fd 1 at
// /dev/null, so later writes to stdout cannot reach the reader.
func releaseStdout(f *os.File) {
	f.Close()
	if n, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		unix.Dup2(int(n.Fd()), 1)
		n.Close()
	}
}

// userManagers lists the users whose manager is up in the domain.
func userManagers(m *Machine, domain string) []string {
	ents, err := os.ReadDir(m.Path(domain, stateRoot+"/user"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// describe is how systemd names a unit in messages: "NAME - Description".
func (g *manager) describe(u *unit) string {
	if u.Description == "" {
		return u.Name
	}
	return u.Name + " - " + u.Description
}

// journal appends a manager message about unit name to its journal file.
func (g *manager) journal(name, msg string) {
	f, err := openJournal(g.journalPath(name))
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s systemd[1]: %s\n", time.Now().Format(time.Stamp), g.domain, msg)
}

// openJournal opens a journal file for appending. A journal copied from a
// template may be a hardlink to the template's file (ResetVolatile shares
// large files): it is copied first so the template's journal stays intact.
func openJournal(p string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if unix.Stat(p, &st) == nil && st.Nlink > 1 {
		if err := breakHardlink(p); err != nil {
			return nil, err
		}
	}
	return os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

func breakHardlink(p string) error {
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(p), ".journal*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	return os.Rename(tmp.Name(), p)
}
