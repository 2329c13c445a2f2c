package sim

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning is returned when starting a running domain.
var ErrAlreadyRunning = errors.New("domain is already running")

// withStartLock serialises starting and stopping one domain.
func (m *Machine) withStartLock(domain string, fn func() error) error {
	if err := os.MkdirAll(m.RunDir(), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(m.startLockPath(domain), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", domain, err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

// StartDomain boots domain: it starts its supervisor and returns once the
// domain runs (boot hooks done). A running domain gives ErrAlreadyRunning.
func (m *Machine) StartDomain(domain string) error {
	return m.withStartLock(domain, func() error {
		if m.Alive(domain) {
			return fmt.Errorf("%s: %w", domain, ErrAlreadyRunning)
		}
		st, err := m.Load()
		if err != nil {
			return err
		}
		if st.Domain(domain) == nil {
			return fmt.Errorf("%w: %q", ErrNoDomain, domain)
		}
		if _, err := os.Stat(m.pidPath(domain)); err == nil {
			// The last supervisor died without finishing (its pid file
			// stayed): the domain was destroyed, so are its strays.
			m.killStrays(domain)
			m.removeStaleQrexecSocket(domain)
		}
		return m.startSupervisor(domain)
	})
}

// EnsureRunning starts domain unless it runs, and unpauses it if paused (as
// qvm-run's autostart does).
func (m *Machine) EnsureRunning(domain string) error {
	if m.Alive(domain) {
		return m.unpauseIfPaused(domain)
	}
	err := m.StartDomain(domain)
	if errors.Is(err, ErrAlreadyRunning) {
		return nil
	}
	return err
}

func (m *Machine) unpauseIfPaused(domain string) error {
	st, err := m.Load()
	if err != nil {
		return err
	}
	if d := st.Domain(domain); d != nil && d.Power == Paused {
		return m.UnpauseDomain(domain)
	}
	return nil
}

// startSupervisor re-executes this binary as the domain's supervisor and
// waits for it to report readiness on a pipe (no polling).
func (m *Machine) startSupervisor(domain string) error {
	exe, err := m.simBinary()
	if err != nil {
		return fmt.Errorf("start %s: %w", domain, err)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	defer rd.Close()
	logPath := filepath.Join(m.Dir, "log", "supervisor-"+domain+".log")
	os.MkdirAll(filepath.Dir(logPath), 0o755)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		wr.Close()
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, supervisorMode, m.Dir, domain)
	cmd.Args[0] = "qubes-sim"
	cmd.Env = []string{"PATH=" + hostSystemPath, "LANG=C.UTF-8"}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{wr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if m.Info.Isolation {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS
	}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		return fmt.Errorf("start %s supervisor: %w", domain, err)
	}
	// The supervisor outlives us; whoever adopts it reaps it.
	pid := cmd.Process.Pid
	cmd.Process.Release()
	line, err := bufio.NewReader(rd).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "ok" {
		return nil
	}
	if line == "" {
		if err == nil {
			err = errors.New("no readiness report")
		}
		line = fmt.Sprintf("supervisor (pid %d) died: %v", pid, err)
	}
	return fmt.Errorf("start %s: %s", domain, line)
}

// StopDomain shuts domain down. With wait it returns when every process of
// the domain is gone; otherwise as soon as the shutdown began (the domain is
// then Halting, as after a real qvm-shutdown without --wait).
func (m *Machine) StopDomain(domain string, wait bool) error {
	c, err := m.dial(domain)
	if err != nil {
		if errors.Is(err, ErrHalted) {
			return err
		}
		return err
	}
	defer c.Close()
	if err := (conn{c}).send(request{Op: opShutdown}); err != nil {
		return fmt.Errorf("shutdown %s: %w", domain, err)
	}
	var r reply
	fs, err := conn{c}.recv(&r)
	closeAll(fs)
	if err != nil {
		return fmt.Errorf("shutdown %s: %w", domain, err)
	}
	if r.Type == repError {
		return fmt.Errorf("shutdown %s: %s", domain, r.Msg)
	}
	if !wait {
		return nil
	}
	// EOF: the supervisor exited.
	for {
		var r reply
		fs, err := conn{c}.recv(&r)
		closeAll(fs)
		if err != nil {
			break
		}
	}
	// The process is gone once its alive lock is released; the kernel drops
	// it at exit, after the socket closed. Take the lock to wait for that.
	return m.waitDead(domain)
}

// waitDead blocks until domain's alive lock is free.
func (m *Machine) waitDead(domain string) error {
	f, err := os.Open(m.alivePath(domain))
	if err != nil {
		return nil
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}
	return nil
}

// PauseDomain stops every process of domain (SIGSTOP) and marks it Paused.
func (m *Machine) PauseDomain(domain string) error {
	_, err := m.ask(domain, request{Op: opPause})
	return err
}

// UnpauseDomain resumes a paused domain.
func (m *Machine) UnpauseDomain(domain string) error {
	_, err := m.ask(domain, request{Op: opUnpause})
	return err
}

// reconcilePower corrects stale power states as the state is read: a domain
// marked running whose supervisor died (killed, host reboot) is Halted. Only
// domains that had a supervisor (an .alive file) are checked, so states
// built by hand in unit tests keep their power.
func (m *Machine) reconcilePower(st *State) {
	for name, d := range st.Domains {
		if !d.Running() {
			continue
		}
		if _, err := os.Stat(m.alivePath(name)); err == nil && !m.Alive(name) {
			d.Power = Halted
			m.removeStaleQrexecSocket(name)
		}
	}
}

// IsRunning reports whether domain runs (paused included, as qvm-check).
func (m *Machine) IsRunning(domain string) bool { return m.Alive(domain) }

// simBinary is the qubes-sim executable of the machine: the target of its
// tool links (the caller may be another program using this package, such as
// a test binary), else this executable.
func (m *Machine) simBinary() (string, error) {
	for _, dir := range []string{m.Dom0BinDir(), m.VMBinDir()} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && filepath.IsAbs(target) {
				return target, nil
			}
		}
	}
	return os.Executable()
}
