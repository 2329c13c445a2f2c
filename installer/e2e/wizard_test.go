package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// systemAnswers is a system answers file (/etc/qubes/qubes-claw-install.yaml)
// giving the wizard the machine's ports and the provider as defaults.
func systemAnswers(p ports, tunnel bool) string {
	a := p.answers()
	a = a[strings.Index(a, "ports:"):] // no agent template, no clients: the wizard asks
	if !tunnel {
		a = strings.Replace(a, "tunnel:\n", "tunnel:\n  enabled: false\n", 1)
		a = a[:strings.Index(a, "  listen:")] + a[strings.Index(a, "setup:"):]
	}
	return a
}

// openPTY opens a pseudo-terminal pair with golang.org/x/sys/unix (already
// a dependency), so the wizard sees a real terminal on stdin.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// session is the installer running on a pty.
type session struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	seen   int
}

func startOnPTY(t *testing.T, m *simtest.Machine, args ...string) *session {
	master, slave := openPTY(t)
	cmd := exec.Command(filepath.Join(m.Bin, "qubes-claw-install"), args...)
	cmd.Env = m.Env()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	s := &session{t: t, master: master, cmd: cmd}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); master.Close() })
	return s
}

// expect waits for text after what was already matched; the deadline only
// turns a hang into a failure.
func (s *session) expect(text string) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		all := s.out.String()
		s.mu.Unlock()
		if i := strings.Index(all[s.seen:], text); i >= 0 {
			s.seen += i + len(text)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Fatalf("waiting for %q; output:\n%s", text, s.out.String())
}

// answer waits for the question, then types the line.
func (s *session) answer(question, line string) {
	s.t.Helper()
	s.expect(question)
	if _, err := s.master.Write([]byte(line + "\r")); err != nil {
		s.t.Fatal(err)
	}
}

func (s *session) wait() int {
	s.t.Helper()
	err := s.cmd.Wait()
	// Drain what the reader still has.
	time.Sleep(50 * time.Millisecond)
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return 0
}

func (s *session) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

func enabled(m *simtest.Machine) bool {
	return m.Dom0("systemctl is-enabled qvm-remote-dom0.service").Code == 0
}

// TestWizardDefaults: Enter on every question installs the default plan;
// the persistent enable refuses every answer but exactly "yes".
func TestWizardDefaults(t *testing.T) {
	for _, reply := range []string{"y", "YES", "", "yes"} {
		t.Run(fmt.Sprintf("persistent=%q", reply), func(t *testing.T) {
			m := newMachine(t)
			m.WriteFile(sim.Dom0, "/etc/qubes/qubes-claw-install.yaml", []byte(systemAnswers(newPorts(t), true)), 0o644)
			s := startOnPTY(t, m)
			for _, q := range []string{"Agent VM name [claw-agent]", "class", "Template (fedora) [fedora]", "Label [purple]",
				"NetVM", "Memory (MiB) [800]", "Maximum memory", "Virtual CPUs [2]", "Start the agent VM at boot [Y/n]",
				"Client VMs", "Ports of the agent VM (proxy, gateway) [",
				"Authorize a VM for qvm-remote", "VM authorized for qvm-remote", "Label of the admin VM [black]"} {
				s.answer(q, "")
			}
			s.answer("Type yes to enable qvm-remote-dom0 at every boot", reply)
			s.expect("[1/")
			s.answer("Apply these", "y")
			s.expect("steps changed")
			if code := s.wait(); code != 0 {
				t.Fatalf("exit %d:\n%s", code, s.output())
			}
			checkInstalled(t, m, nil, reply == "yes")
			if reply == "yes" && m.Dom0("systemctl is-active qvm-remote-dom0.service").Code != 0 {
				t.Errorf("enabled but not started")
			}
		})
	}
}
