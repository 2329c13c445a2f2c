package sim_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
	"github.com/qubes-claw/qubes-claw/pkg/testwait"
)

// dialUnixPath connects to the unix socket at p, whatever its length (deep
// t.TempDir paths overflow sun_path): through an O_PATH fd of its directory.
func dialUnixPath(p string) (net.Conn, error) {
	fd, err := unix.Open(filepath.Dir(p), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", fd, filepath.Base(p)))
}

// inotifyEvents drains the pending events of a non-blocking inotify fd as
// "CREATE name" / "DELETE name" lines.
func inotifyEvents(t *testing.T, fd int) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return out
		}
		if err != nil {
			t.Fatalf("read inotify: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafePointer(buf[off:]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			kind := "OTHER"
			switch {
			case ev.Mask&unix.IN_CREATE != 0:
				kind = "CREATE"
			case ev.Mask&unix.IN_DELETE != 0:
				kind = "DELETE"
			}
			out = append(out, kind+" "+name)
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// TestQrexecSocketLifecycle: dom0's /run/qubes/qrexec.VM exists (a live
// socket) from before qvm-start returns until the VM is Halted, as the
// qvm-remote daemon's directory watch expects (qubes.md §1.6), and a
// killed supervisor leaves no socket that accepts connections.
func TestQrexecSocketLifecycle(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("vm")
	dir := m.Sim.Path(sim.Dom0, "/run/qubes")
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode() != os.ModeDir|os.ModeSetgid|0o770 {
		t.Fatalf("dom0 /run/qubes after boot: %v %v", fi, err)
	}
	sock := m.Sim.QrexecSocket("vm")
	if sock != filepath.Join(dir, "qrexec.vm") {
		t.Fatalf("QrexecSocket = %s", sock)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket of a halted VM: %v", err)
	}
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ifd)
	if _, err := unix.InotifyAddWatch(ifd, dir, unix.IN_CREATE|unix.IN_DELETE); err != nil {
		t.Fatal(err)
	}

	m.MustRun("qvm-start", "vm")
	if ev := inotifyEvents(t, ifd); !contains(ev, "CREATE qrexec.vm") {
		t.Errorf("events after qvm-start: %q", ev)
	}
	fi, err = os.Lstat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o777 {
		t.Fatalf("socket after qvm-start: %v %v", fi, err)
	}
	c, err := dialUnixPath(sock)
	if err != nil {
		t.Fatalf("connect to the socket of a running VM: %v", err)
	}
	c.Close()
	// qrexec-client needs no socket of dom0 itself.
	if _, err := os.Lstat(m.Sim.QrexecSocket(sim.Dom0)); err == nil {
		t.Error("dom0 has a qrexec socket for itself")
	}

	m.MustRun("qvm-shutdown", "--wait", "vm")
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket after qvm-shutdown --wait: %v", err)
	}
	if ev := inotifyEvents(t, ifd); !contains(ev, "DELETE qrexec.vm") {
		t.Errorf("events after qvm-shutdown: %q", ev)
	}

	// A killed supervisor: the socket refuses connections at once, and
	// the next state read (any qvm-* call) removes it.
	m.MustRun("qvm-start", "vm")
	b, err := os.ReadFile(filepath.Join(m.Sim.RunDir(), "vm.pid"))
	if err != nil {
		t.Fatal(err)
	}
	sup, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; alive(sup) && i < 2000; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if alive(sup) {
		t.Fatal("supervisor survived SIGKILL")
	}
	// The leader thread shows as a zombie while the other threads may
	// still hold the process's fds: wait (bounded) for the last one.
	var derr error
	for i := 0; i < 2000; i++ {
		var c net.Conn
		if c, derr = dialUnixPath(sock); derr != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	if derr == nil {
		t.Fatal("the socket of a killed supervisor still accepts connections")
	} else if !errors.Is(derr, syscall.ECONNREFUSED) && !errors.Is(derr, os.ErrNotExist) {
		t.Fatalf("connect after kill: %v", derr)
	}
	if m.Running("vm") {
		t.Fatal("vm running after its supervisor was killed")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket after the state read: %v", err)
	}
}

// TestQubesDBRead: qubesdb-read answers for the calling VM from the live
// qubes state, with the real tool's output, errors and exit codes.
func TestQubesDBRead(t *testing.T) {
	m := simtest.New(t)
	m.Template("tpl")
	m.AppVM("app", "tpl")
	m.MustRun("qvm-service", "app", "claw", "on")
	m.MustRun("qvm-prefs", "app", "default_user", "claw")

	r := m.VM("app", "qubesdb-read /name /type /qubes-vm-type /qubes-vm-persistence /default-user /qubes-vm-updateable /qubes-base-template /qubes-service/claw")
	if want := "app\nAppVM\nAppVM\nrw-only\nclaw\nFalse\ntpl\n1\n"; r.Code != 0 || r.Stdout != want || r.Stderr != "" {
		t.Fatalf("read: %v, want stdout %q", r, want)
	}
	if r := m.VM("tpl", "qubesdb-read", "/name", "/qubes-vm-type", "/qubes-vm-persistence", "/qubes-vm-updateable"); r.Stdout != "tpl\nTemplateVM\nfull\nTrue\n" {
		t.Errorf("template: %v", r)
	}
	// QubesDB follows feature changes while the VM runs; the boot-time
	// flag file does not (qubes.md §3.7).
	m.MustRun("qvm-service", "app", "claw", "off")
	m.MustRun("qvm-service", "app", "extra", "on")
	if r := m.VM("app", "qubesdb-read", "/qubes-service/claw", "/qubes-service/extra"); r.Stdout != "0\n1\n" {
		t.Errorf("live service change: %v", r)
	}
	if _, err := os.Stat(m.Sim.Path("app", "/run/qubes-service/extra")); err == nil {
		t.Error("a live qvm-service created the flag file")
	}
	// A missing key: the real message and status; -q silences it; the
	// other keys are still printed.
	if r := m.VM("app", "qubesdb-read", "/name", "/nope"); r.Code != 1 || r.Stdout != "app\n" || r.Stderr != "Failed to read /nope\n" {
		t.Errorf("missing key: %v", r)
	}
	if r := m.VM("app", "qubesdb-read", "-q", "/nope"); r.Code != 1 || r.Stderr != "" {
		t.Errorf("-q: %v", r)
	}
	if r := m.VM("app", "qubesdb-read", "-f", "/name"); r.Stdout != "/name = app\n" {
		t.Errorf("-f: %v", r)
	}
	// -d names another domain's daemon: dom0 only.
	if r := m.VM("app", "qubesdb-read", "-d", "tpl", "/name"); r.Code != 1 || r.Stderr != "Failed connect to tpl daemon\n" {
		t.Errorf("-d in a VM: %v", r)
	}
	if r := m.VM("app", "qubesdb-multiread", "/qubes-service/"); r.Code != 0 || r.Stdout != "claw = 0\nextra = 1\n" {
		t.Errorf("multiread: %v", r)
	}
	if r := m.VM("app", "qubesdb-list", "/qubes-service/"); r.Code != 0 || r.Stdout != "claw\nextra\n" {
		t.Errorf("list: %v", r)
	}
	// The environment does not choose the database: the process's
	// ancestry does.
	if r := m.VM("app", "QUBES_SIM_DOMAIN=tpl qubesdb-read /name"); r.Stdout != "app\n" {
		t.Errorf("with QUBES_SIM_DOMAIN=tpl: %v", r)
	}
	host := m.Run(simtest.Cmd{Argv: []string{filepath.Join(m.Sim.VMBinDir(), "qubesdb-read"), "/name"}, Env: []string{"QUBES_SIM_DOMAIN=app"}})
	if host.Code != 1 || host.Stdout != "" || host.Stderr != "Failed connect to local daemon\n" {
		t.Errorf("outside every VM: %v", host)
	}
}

// TestDom0Qubesd: dom0 runs qubesd.service from boot, so dom0 units
// ordered After= or requiring it start as in dom0.
func TestDom0Qubesd(t *testing.T) {
	m := simtest.New(t)
	if r := m.Dom0("systemctl", "is-active", "qubesd"); r.Code != 0 || r.Stdout != "active\n" {
		t.Fatalf("is-active qubesd: %v", r)
	}
	if r := m.Dom0("systemctl", "is-enabled", "qubesd"); r.Code != 0 || r.Stdout != "enabled\n" {
		t.Errorf("is-enabled qubesd: %v", r)
	}
	m.WriteFile(sim.Dom0, "/etc/systemd/system/claw-admin.service", []byte(`[Unit]
Description=needs qubesd
Requires=qubesd.service
After=qubesd.service
[Service]
ExecStart=/bin/sleep 1000
[Install]
WantedBy=multi-user.target
`), 0o644)
	m.MustRun("qubes-sim", "dom0", m.Dir, "--", "systemctl", "enable", "claw-admin")
	m.MustRun("qubes-sim", "reboot", m.Dir)
	for _, u := range []string{"qubesd", "claw-admin"} {
		if r := m.Dom0("systemctl", "is-active", u); r.Stdout != "active\n" {
			t.Errorf("after reboot, %s: %v", u, r)
		}
	}
}

// TestTmpdirInsideMachine: every process the machine starts has TMPDIR in
// its domain's /tmp, so temporary files never land on the host's /tmp.
func TestTmpdirInsideMachine(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("vm")
	check := func(what, domain, path string) {
		t.Helper()
		path = strings.TrimSpace(path)
		want := m.Sim.Path(domain, "/tmp") + "/"
		if !strings.HasPrefix(path, want) {
			t.Errorf("%s: mktemp gave %q, want it under %s", what, path, want)
			return
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	r := m.VM("vm", "mktemp")
	check("qubes-sim vm", "vm", r.Stdout)
	r = m.Dom0("mktemp")
	check("qubes-sim dom0", sim.Dom0, r.Stdout)
	r = m.Host("qvm-run", "-p", "vm", "mktemp")
	check("qvm-run", "vm", r.Stdout)
	m.WriteFile("vm", "/etc/qubes-rpc/test.Tmp", []byte("#!/bin/sh\nmktemp\n"), 0o755)
	r = m.Host("qrexec-client", "-d", "vm", "DEFAULT:QUBESRPC test.Tmp dom0")
	check("qrexec service", "vm", r.Stdout)
	// A system unit: no HOME, but TMPDIR all the same.
	m.WriteFile("vm", "/etc/systemd/system/tmp-user.service", []byte("[Service]\nType=oneshot\nExecStart=/bin/sh -c 'mktemp > \"$QUBES_CLAW_ROOT/unit-tmp\"'\n"), 0o644)
	if r := m.VM("vm", "systemctl", "start", "tmp-user"); r.Code != 0 {
		t.Fatalf("start unit: %v", r)
	}
	b, err := os.ReadFile(m.Sim.Path("vm", "/unit-tmp"))
	if err != nil {
		t.Fatal(err)
	}
	check("unit", "vm", string(b))
}

// TestShutdownKillsStrays: a double-forked daemon outlives its SIGKILLed
// supervisor (re-parented out of its tree); qubes-sim shutdown still finds
// and kills it, and so does the VM's next start. Host processes that merely
// run in dom0's environment (a `qubes-sim env` shell) are left alone.
func TestShutdownKillsStrays(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("vm")
	bystander := exec.Command("sleep", "1000")
	bystander.Env = m.Env()
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bystander.Process.Kill(); bystander.Wait() })

	startStray := func() int {
		t.Helper()
		r := m.VM("vm", `setsid sh -c 'sleep 1000 & echo $! > "$HOME/stray"' </dev/null >/dev/null 2>&1 &`)
		if r.Code != 0 {
			t.Fatalf("start daemon: %v", r)
		}
		pf := m.Sim.Path("vm", "/home/user/stray")
		var pid int
		for i := 0; i < 2000 && pid == 0; i++ {
			b, _ := os.ReadFile(pf)
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			if pid == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		os.Remove(pf)
		if pid == 0 || !alive(pid) {
			t.Fatalf("daemon not running (pid %d)", pid)
		}
		return pid
	}
	killSupervisor := func() {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(m.Sim.RunDir(), "vm.pid"))
		if err != nil {
			t.Fatal(err)
		}
		sup, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		syscall.Kill(sup, syscall.SIGKILL)
		for i := 0; alive(sup) && i < 2000; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		// Its alive lock goes a moment after it shows as a zombie: see
		// TestRuntimeDeadSupervisorIsHalted.
		testwait.For(t, 20*time.Second, "vm to count as halted", func() bool { return !m.Running("vm") })
	}

	stray := startStray()
	killSupervisor()
	if !alive(stray) {
		t.Fatal("test premise: the daemon died with its supervisor")
	}
	m.MustRun("qubes-sim", "shutdown", m.Dir)
	if alive(stray) {
		t.Error("qubes-sim shutdown left the daemon of a killed supervisor running")
	}
	if !alive(bystander.Process.Pid) {
		t.Error("qubes-sim shutdown killed a host process in dom0's environment")
	}

	m.MustRun("qubes-sim", "reboot", m.Dir)
	stray = startStray()
	killSupervisor()
	if !alive(stray) {
		t.Fatal("test premise: the daemon died with its supervisor")
	}
	m.MustRun("qvm-start", "vm")
	if alive(stray) {
		t.Error("restarting the VM left the daemon of its killed supervisor running")
	}
}

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
