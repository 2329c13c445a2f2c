package sim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Trust model. Supervisors play Xen and dom0's qrexec daemons. A request's
// origin is the domain of the connecting process, found from its ancestry
// (SO_PEERCRED pid, then /proc parents up to the nearest supervisor of this
// machine); no variable a process controls changes it. Processes outside
// every supervisor (tests, `qubes-sim env` shells) act as dom0. Only dom0
// may spawn in, run services of, pause or stop another domain; a VM may
// spawn in itself and trigger policy-checked calls (qrexec-client-vm),
// whose source is its own domain.
//
// What a VM process can still do, isolation or not: everything runs as one
// host user on one filesystem, so it can read and write any domain's files,
// dom0's policy and the qubes state directly, and signal other domains'
// processes. Without isolation it also shares the host network: it can
// connect to another domain's TCP ports without qrexec. Isolation mode
// closes the network path only.

// A Supervisor is the process that owns every process of one running domain:
// the simulated domain is "running" exactly while its supervisor lives. It is
// a subreaper, so orphans (double-forked daemons) stay below it, and it kills
// every descendant when the domain stops. It runs inside the domain's
// namespaces in isolation mode.
type Supervisor struct {
	M      *Machine
	Domain string

	mu       sync.Mutex
	procs    map[int]*supProc
	paused   bool
	stopping bool
	stopOnce sync.Once
	stopped  chan struct{} // closed when every descendant is gone
	ln       *net.UnixListener
	alive    *os.File
	qrexecLn *net.UnixListener // dom0's /run/qubes/qrexec.DOMAIN (VMs only)
}

type supProc struct {
	info   ProcessInfo
	start  time.Time
	exited chan struct{}
	code   int
}

// DomainHooks let other parts of the simulator act at domain boot and stop.
// They run inside the domain's supervisor process: Start after the supervisor
// listens and before the domain is reported running (qvm-start returns after
// it), Stop when shutdown begins, before processes are killed. Processes must
// be started with (*Supervisor).Spawn, never os/exec: the supervisor reaps
// every child itself. The systemd layer fills these to start enabled units.
var DomainHooks struct {
	Start []func(s *Supervisor) error
	Stop  []func(s *Supervisor)
}

const supervisorComm = "qsim-supervisor" // 15 bytes: the kernel's comm limit

// supervisorMode is the hidden qubes-sim subcommand that runs a supervisor.
const supervisorMode = "__supervise"

// Paths of a domain's supervisor runtime files.
func (m *Machine) sockPath(domain string) string { return filepath.Join(m.RunDir(), domain+".sock") }
func (m *Machine) alivePath(domain string) string {
	return filepath.Join(m.RunDir(), domain+".alive")
}
func (m *Machine) startLockPath(domain string) string {
	return filepath.Join(m.RunDir(), domain+".lock")
}
func (m *Machine) pidPath(domain string) string { return filepath.Join(m.RunDir(), domain+".pid") }

// Alive reports whether domain's supervisor is up. The supervisor holds an
// exclusive flock on its .alive file for its whole life; the kernel drops it
// when the process dies, so a killed supervisor is never mistaken as running.
func (m *Machine) Alive(domain string) bool {
	f, err := os.Open(m.alivePath(domain))
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

// runSupervisor is the body of `qubes-sim __supervise DIR DOMAIN`. fd 3 is the
// readiness pipe of the starter: "ok\n" or an error message.
func runSupervisor(dir, domain string) int {
	resetIgnoredSignals()
	ready := os.NewFile(3, "ready")
	if ready != nil {
		unix.CloseOnExec(3)
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "supervisor %s: %v\n", domain, err)
		if ready != nil {
			fmt.Fprintf(ready, "%v\n", err)
			ready.Close()
		}
		return 1
	}
	m, err := Open(dir)
	if err != nil {
		return fail(err)
	}
	s := &Supervisor{M: m, Domain: domain, procs: map[int]*supProc{}, stopped: make(chan struct{})}
	if err := s.setup(); err != nil {
		return fail(err)
	}
	if err := s.boot(); err != nil {
		s.shutdown()
		<-s.stopped
		s.finish()
		return fail(err)
	}
	if ready != nil {
		ready.WriteString("ok\n")
		ready.Close()
	}
	<-s.stopped
	s.finish()
	return 0
}

func (s *Supervisor) setup() error {
	// Orphans re-parent to us rather than to init: shutdown finds them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set child subreaper: %w", err)
	}
	// The comm marks supervisors in /proc for peer identification.
	_ = os.WriteFile("/proc/self/comm", []byte(supervisorComm), 0)
	if s.M.Info.Isolation {
		if err := enterIsolation(s.Domain); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.M.RunDir(), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(s.M.alivePath(s.Domain), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := lockAlive(f); err != nil {
		f.Close()
		return fmt.Errorf("domain %s already has a supervisor: %w", s.Domain, err)
	}
	s.alive = f
	if err := os.WriteFile(s.M.pidPath(s.Domain), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	sock := s.M.sockPath(s.Domain)
	os.Remove(sock)
	ln, err := listenUnix("unixpacket", sock)
	if err != nil {
		return fmt.Errorf("listen %s: %w", sock, err)
	}
	s.ln = ln

	// Register for SIGCHLD before the first fork.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	go s.reap(chld)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	// SIGPIPE is not ignored: an ignored signal stays ignored across exec,
	// and the domain's processes must get the default. Writes to a closed
	// client pipe just fail with EPIPE here (fds other than 1 and 2).
	go func() { <-term; s.shutdown() }()
	go s.acceptLoop()
	return nil
}

// boot resets what a domain loses at shutdown, marks the domain running and
// runs the start hooks.
func (s *Supervisor) boot() error {
	err := s.M.Update(func(st *State) error {
		d := st.Domain(s.Domain)
		if d == nil {
			return fmt.Errorf("no such domain: %q", s.Domain)
		}
		if err := s.M.ResetVolatile(st, d); err != nil {
			return fmt.Errorf("reset volatile state of %s: %w", s.Domain, err)
		}
		d.Power = Running
		return nil
	})
	if err != nil {
		return err
	}
	// After the Update: a state reader that found the previous
	// supervisor dead and removes its stale socket (reconcilePower) holds
	// the state lock, so it cannot remove this one.
	if s.Domain != Dom0 {
		if err := s.listenQrexec(); err != nil {
			return err
		}
	}
	for _, h := range DomainHooks.Start {
		if err := h(s); err != nil {
			return fmt.Errorf("boot %s: %w", s.Domain, err)
		}
	}
	return nil
}

// finish marks the domain halted and removes the runtime files. The alive
// lock goes last, with the process.
func (s *Supervisor) finish() {
	// The qrexec socket goes before the domain is Halted, as when
	// qrexec-daemon exits with its domain.
	if s.qrexecLn != nil {
		s.qrexecLn.Close()
		os.Remove(s.M.QrexecSocket(s.Domain))
	}
	_ = s.M.Update(func(st *State) error {
		if d := st.Domain(s.Domain); d != nil {
			d.Power = Halted
		}
		return nil
	})
	os.Remove(s.M.sockPath(s.Domain))
	os.Remove(s.M.pidPath(s.Domain))
}

// QrexecSocket is the host path of dom0's /var/run/qubes/qrexec.DOMAIN, the
// socket qrexec-daemon listens on while domain runs (qubes.md §1.6).
func (m *Machine) QrexecSocket(domain string) string {
	return m.Path(Dom0, "/run/qubes/qrexec."+domain)
}

// listenQrexec creates the domain's qrexec socket in dom0, as qrexec-daemon
// does when the VM starts. It is a real listening socket owned by the
// supervisor: while the domain runs a connect succeeds (the connection is
// closed at once: the simulated qrexec-client talks to the supervisor, not
// qrexec's protocol); once the supervisor is gone, killed included, a
// connect is refused. A killed supervisor's socket file is removed by the
// next state read (reconcilePower), start of the domain or machine
// shutdown.
func (s *Supervisor) listenQrexec() error {
	p := s.M.QrexecSocket(s.Domain)
	dir := filepath.Dir(p)
	if _, err := os.Stat(dir); err != nil {
		if err := makeSkeleton(s.M.Root(Dom0), []struct {
			path string
			mode fs.FileMode
		}{{"run/qubes", 0o770 | fs.ModeSetgid}}); err != nil {
			return fmt.Errorf("qrexec socket: %w", err)
		}
	}
	os.Remove(p)
	ln, err := listenUnix("unix", p)
	if err != nil {
		return fmt.Errorf("qrexec socket: %w", err)
	}
	// create_qrexec_socket: mode 0777, the directory restricts access.
	os.Chmod(p, 0o777)
	s.qrexecLn = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

// removeStaleQrexecSocket removes the qrexec socket of a domain whose
// supervisor died without cleaning up.
func (m *Machine) removeStaleQrexecSocket(domain string) {
	if domain != Dom0 && !m.Alive(domain) {
		os.Remove(m.QrexecSocket(domain))
	}
}

func (s *Supervisor) acceptLoop() {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		go s.serve(c)
	}
}

// shutdown starts stopping the domain: stop hooks, then TERM and KILL to
// every descendant. s.stopped is closed when none is left.
func (s *Supervisor) shutdown() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		go func() {
			_ = s.M.Update(func(st *State) error {
				if d := st.Domain(s.Domain); d != nil && d.Power != Halted {
					d.Power = "Halting"
				}
				return nil
			})
			for _, h := range DomainHooks.Stop {
				h(s)
			}
			s.killAll()
			s.ln.Close()
			close(s.stopped)
		}()
	})
}

// killAll terminates every descendant (other supervisors and their trees
// excepted: a VM started by one of our processes is not part of our domain).
func (s *Supervisor) killAll() { killDescendants(s.M, 2*time.Second) }

// killDescendants sends TERM once to every descendant of this process (see
// descendants) and KILL to whatever is left after grace, until none is left.
// The supervisor and a unit's runner stop their processes the same way.
func killDescendants(m *Machine, grace time.Duration) {
	self := os.Getpid()
	deadline := time.Now().Add(grace)
	termed := map[int]bool{}
	for {
		desc := descendants(self, m)
		if len(desc) == 0 {
			return
		}
		sig := unix.SIGTERM
		if time.Now().After(deadline) {
			sig = unix.SIGKILL
		}
		for _, pid := range desc {
			if sig == unix.SIGKILL || !termed[pid] {
				unix.Kill(pid, sig)
				// A stopped process would never act on TERM.
				unix.Kill(pid, unix.SIGCONT)
				termed[pid] = true
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// procStat returns the parent pid and comm of pid from /proc/PID/stat.
func procStat(pid int) (ppid int, comm string, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	s := string(b)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	comm = s[open+1 : close]
	f := strings.Fields(s[close+1:])
	if len(f) < 2 {
		return 0, "", fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// A zombie is already dead: nothing to kill, only to reap.
	if f[0] == "Z" {
		return 0, comm, errZombie
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, comm, err
}

var errZombie = errors.New("zombie")

// supervisorDomain reports which domain of m the supervisor process pid
// serves ("" when pid is not one of m's supervisors).
func (m *Machine) supervisorDomain(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for i := 0; i+2 < len(args); i++ {
		if args[i] == supervisorMode && args[i+1] == m.Dir {
			return args[i+2]
		}
	}
	return ""
}

// descendants lists every living descendant of root, skipping the subtrees
// of other supervisors.
func descendants(root int, m *Machine) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	sup := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, comm, err := procStat(pid)
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], pid)
		if comm == supervisorComm {
			sup[pid] = true
		}
	}
	var out []int
	stack := []int{root}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range children[p] {
			if sup[c] {
				continue
			}
			out = append(out, c)
			stack = append(stack, c)
		}
	}
	return out
}

// peerDomain identifies the domain a connecting process runs in by its
// ancestry, which a process cannot forge: the nearest supervisor ancestor
// (of this machine) owns it. A process outside every supervisor (a test, a
// `qubes-sim env` shell) acts as dom0. A supervisor itself gets "" and
// counts as the hypervisor.
func (s *Supervisor) peerDomain(c *net.UnixConn) (dom string, isSupervisor bool, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return "", false, err
	}
	var cred *unix.Ucred
	var cerr error
	raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if cerr != nil {
		return "", false, cerr
	}
	dom, depth, err := s.M.domainOfPid(int(cred.Pid), os.Getpid(), s.Domain)
	return dom, err == nil && depth == 0, err
}

// domainOfPid walks pid's ancestry up to the nearest supervisor of m and
// returns that supervisor's domain and how many parents up it was (0: pid
// is the supervisor). self, when met on the way, is known to serve
// selfDomain without reading its cmdline. A process under no supervisor
// is dom0's (depth -1). The ancestry is what identifies a caller: a process
// cannot change it, whatever its environment says.
func (m *Machine) domainOfPid(pid, self int, selfDomain string) (string, int, error) {
	for depth := 0; pid > 1 && depth < 256; depth++ {
		if pid == self {
			return selfDomain, depth, nil
		}
		ppid, comm, err := procStat(pid)
		if err != nil {
			return "", 0, fmt.Errorf("identify peer: %w", err)
		}
		if comm == supervisorComm {
			if d := m.supervisorDomain(pid); d != "" {
				return d, depth, nil
			}
		}
		pid = ppid
	}
	return Dom0, -1, nil
}

// serve handles one connection.
func (s *Supervisor) serve(uc *net.UnixConn) {
	defer uc.Close()
	c := conn{uc}
	var req request
	files, err := c.recv(&req)
	if err != nil {
		return
	}
	defer closeAll(files)
	peer, isSup, err := s.peerDomain(uc)
	if err != nil {
		c.send(reply{Type: repError, Code: ExitProblem, Msg: err.Error()})
		return
	}
	admin := isSup || peer == Dom0
	local := peer == s.Domain
	deny := func() {
		c.send(reply{Type: repError, Code: ExitRequestRefused, Msg: fmt.Sprintf("%s may not %s in %s", peer, req.Op, s.Domain)})
	}
	switch req.Op {
	case opPing:
		c.send(reply{Type: repOK})
	case opSpawn:
		if !admin && !local {
			deny()
			return
		}
		s.handleSpawn(c, req, files)
	case opService:
		if !admin {
			deny()
			return
		}
		s.handleService(c, req, files)
	case opTrigger:
		s.handleTrigger(c, peer, req, files)
	case opList:
		if !admin && !local {
			deny()
			return
		}
		c.send(reply{Type: repList, Procs: s.Processes()})
	case opSignal:
		if !admin && !local {
			deny()
			return
		}
		n := s.signal(req.Pid, req.Tag, syscall.Signal(req.Sig))
		c.send(reply{Type: repOK, Code: n})
	case opShutdown:
		if !admin {
			deny()
			return
		}
		s.shutdown()
		c.send(reply{Type: repOK})
		// The caller waits for EOF: the connection closes when we exit.
		<-s.stopped
		select {}
	case opPause, opUnpause:
		if !admin {
			deny()
			return
		}
		s.setPaused(req.Op == opPause)
		c.send(reply{Type: repOK})
	default:
		c.send(reply{Type: repError, Code: ExitProblem, Msg: "unknown operation " + req.Op})
	}
}

func (s *Supervisor) setPaused(p bool) {
	sig := unix.SIGCONT
	power := Running
	if p {
		sig, power = unix.SIGSTOP, Paused
	}
	s.mu.Lock()
	s.paused = p
	s.mu.Unlock()
	for _, pid := range descendants(os.Getpid(), s.M) {
		unix.Kill(pid, sig)
	}
	_ = s.M.Update(func(st *State) error {
		if d := st.Domain(s.Domain); d != nil {
			d.Power = power
		}
		return nil
	})
}

// Processes lists the processes started through the supervisor that still run.
func (s *Supervisor) Processes() []ProcessInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProcessInfo, 0, len(s.procs))
	for _, p := range s.procs {
		out = append(out, p.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	return out
}

// signal sends sig to the process group of pid, or of every process tagged
// tag; it returns how many were signalled.
func (s *Supervisor) signal(pid int, tag string, sig syscall.Signal) int {
	s.mu.Lock()
	var pids []int
	for p, sp := range s.procs {
		if (pid != 0 && p == pid) || (tag != "" && sp.info.Tag == tag) {
			pids = append(pids, p)
		}
	}
	s.mu.Unlock()
	for _, p := range pids {
		// Every spawned process leads its own process group.
		if unix.Kill(-p, sig) != nil {
			unix.Kill(p, sig)
		}
	}
	return len(pids)
}

// reap collects every child (our own and adopted orphans).
func (s *Supervisor) reap(chld chan os.Signal) {
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
			s.exited(pid, ws)
		}
		<-chld
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func (s *Supervisor) exited(pid int, ws unix.WaitStatus) {
	s.mu.Lock()
	p := s.procs[pid]
	delete(s.procs, pid)
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.code = exitCode(ws)
	// Recorded before the exit is reported: a caller that saw the exit
	// finds the record.
	s.M.Record(Invocation{
		Kind: "spawn", Domain: s.Domain, Argv: p.info.Argv, Start: p.start,
		Duration: float64(time.Since(p.start).Microseconds()) / 1000, Exit: p.code,
	})
	close(p.exited)
}

// spawnError is a spawn failure with the exit status qrexec would report.
type spawnError struct {
	code int
	err  error
}

func (e *spawnError) Error() string { return e.err.Error() }
func (e *spawnError) Unwrap() error { return e.err }

// start runs argv in the domain with stdio files (nil: /dev/null).
func (s *Supervisor) start(req request, stdio []*os.File, extraEnv ...string) (*supProc, error) {
	if len(req.Argv) == 0 {
		return nil, &spawnError{ExitProblem, errors.New("empty command")}
	}
	s.mu.Lock()
	stopping, paused := s.stopping, s.paused
	s.mu.Unlock()
	if stopping {
		return nil, &spawnError{ExitProblem, fmt.Errorf("domain %s is shutting down", s.Domain)}
	}
	if paused {
		return nil, &spawnError{ExitProblem, fmt.Errorf("domain %s is paused", s.Domain)}
	}
	user := req.User
	if user == "" || user == "DEFAULT" {
		user = s.defaultUser()
	}
	env := mergeEnv(s.M.spawnEnv(s.Domain, user), append(extraEnv, req.Env...)...)
	cwd := envValue(env, "HOME")
	if req.Dir != "" {
		if p, err := s.M.ResolveInRoot(s.Domain, req.Dir); err == nil {
			cwd = p
		}
	}
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		cwd = s.M.Root(s.Domain)
	}
	argv := req.Argv
	if req.Shell {
		argv = []string{"bash", "-c", req.Argv[0]}
	}
	path, err := s.M.lookExec(s.Domain, argv[0], env, cwd)
	if err != nil {
		return nil, &spawnError{ExitServiceNotFound, err}
	}
	files := make([]uintptr, 3)
	var devnull *os.File
	for i := 0; i < 3; i++ {
		if i < len(stdio) && stdio[i] != nil {
			files[i] = stdio[i].Fd()
			continue
		}
		if devnull == nil {
			if devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
				return nil, &spawnError{ExitProblem, err}
			}
			defer devnull.Close()
		}
		files[i] = devnull.Fd()
	}
	attr := &syscall.ProcAttr{
		Dir:   cwd,
		Env:   env,
		Files: files,
		// Own process group (signals to the whole job); killed with the
		// supervisor if it dies abnormally, so a crash leaves no orphans
		// (their double-forked children excepted).
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	}
	p := &supProc{info: ProcessInfo{Tag: req.Tag, Argv: argv}, start: time.Now(), exited: make(chan struct{})}
	// Holding mu across fork and registration keeps the reaper from missing
	// a child that exits at once.
	s.mu.Lock()
	pid, err := syscall.ForkExec(path, argv, attr)
	if err == nil {
		p.info.Pid = pid
		s.procs[pid] = p
	}
	s.mu.Unlock()
	runtime.KeepAlive(stdio)
	if err != nil {
		code := ExitProblem
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOEXEC) {
			code = ExitServiceNotFound
		}
		return nil, &spawnError{code, fmt.Errorf("exec %s: %w", argv[0], err)}
	}
	return p, nil
}

func (s *Supervisor) defaultUser() string {
	u := "user"
	_ = s.M.View(func(st *State) error {
		u = defaultUser(st, st.Domain(s.Domain))
		return nil
	})
	return u
}

// handleSpawn runs a process for a client and reports its exit.
func (s *Supervisor) handleSpawn(c conn, req request, files []*os.File) {
	p, err := s.start(req, files)
	closeAll(files)
	if err != nil {
		s.replyErr(c, err)
		return
	}
	s.follow(c, p)
}

func (s *Supervisor) replyErr(c conn, err error) {
	code := ExitProblem
	var se *spawnError
	if errors.As(err, &se) {
		code = se.code
	}
	c.send(reply{Type: repError, Code: code, Msg: err.Error()})
}

// follow reports p's pid and exit status on c, and relays signal requests.
func (s *Supervisor) follow(c conn, p *supProc) {
	if err := c.send(reply{Type: repStarted, Pid: p.info.Pid}); err != nil {
		return
	}
	go func() {
		for {
			var r request
			files, err := c.recv(&r)
			closeAll(files)
			if err != nil {
				return
			}
			if r.Op == opSignal {
				s.signal(p.info.Pid, "", syscall.Signal(r.Sig))
			}
		}
	}()
	<-p.exited
	c.send(reply{Type: repExit, Code: p.code})
}

// Spawn starts a process in the supervisor's own domain (for boot hooks).
func (s *Supervisor) Spawn(req SpawnRequest) (*Process, error) {
	p, err := s.start(req.wire(), []*os.File{req.Stdin, req.Stdout, req.Stderr})
	if err != nil {
		return nil, err
	}
	return &Process{pid: p.info.Pid, local: p}, nil
}

// waitCtx waits for p or ctx.
func (p *supProc) waitCtx(ctx context.Context) (int, error) {
	select {
	case <-p.exited:
		return p.code, nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// lockAlive takes the alive lock. Alive() probes hold a shared lock for a
// moment, so contention is retried briefly; a living supervisor keeps it.
func lockAlive(f *os.File) error {
	var err error
	for i := 0; i < 200; i++ {
		if err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return err
}
