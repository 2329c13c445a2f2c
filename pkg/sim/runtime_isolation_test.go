package sim_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

func TestIsolationOnlyQrexecConnects(t *testing.T) {
	simtest.SkipUnlessIsolation(t)
	m := simtest.New(t, simtest.Isolation())
	m.StandaloneVM("srv")
	m.StandaloneVM("peer")
	m.Symlink("srv", "/dev/tcp/127.0.0.1", "/etc/qubes-rpc/qubes.ConnectTCP")
	m.MustRun("qvm-start", "srv")
	port := startEchoServer(t, m, "srv")

	// Inside srv the port is there, and the hostname is the domain's.
	r := m.VM("srv", "hostname; exec 3<>/dev/tcp/127.0.0.1/"+port+" && head -n1 <&3")
	if r.Code != 0 || r.Stdout != "srv\nhello from srv\n" {
		t.Fatalf("inside srv: %v", r)
	}
	// dom0 and another VM cannot reach it over the network.
	connect := "exec 3<>/dev/tcp/127.0.0.1/" + port + " && echo connected"
	if r := m.Dom0(connect); r.Code == 0 || strings.Contains(r.Stdout, "connected") {
		t.Errorf("dom0 reached the VM's port directly: %v", r)
	}
	if r := m.VM("peer", connect); r.Code == 0 || strings.Contains(r.Stdout, "connected") {
		t.Errorf("another VM reached the port directly: %v", r)
	}
	if r := m.Dom0("hostname"); r.Stdout != "dom0\n" {
		t.Errorf("dom0 hostname: %v", r)
	}
	// Through qrexec it works, from dom0 (qrexec-client inside dom0) ...
	r = m.Dom0Input([]byte("ping\n"), "qrexec-client -d srv 'DEFAULT:QUBESRPC qubes.ConnectTCP+"+port+" dom0'")
	if r.Code != 0 || !strings.Contains(r.Stdout, "hello from srv\n") || !strings.Contains(r.Stdout, "\x00ping\n") {
		t.Fatalf("qrexec-client from dom0: %v", r)
	}
	// ... and from a VM allowed by policy.
	m.Policy("30-tcp.policy", "qubes.ConnectTCP +"+port+" peer srv allow\n")
	r = m.VMInput("peer", []byte("pong\n"), "qrexec-client-vm srv qubes.ConnectTCP+"+port)
	if r.Code != 0 || !strings.Contains(r.Stdout, "\x00pong\n") {
		t.Fatalf("qrexec-client-vm from peer: %v", r)
	}
}

func TestIsolationRefusedWithoutRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run qubes-sim as another user")
	}
	bin := simtest.Binaries(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	cmd := exec.Command(filepath.Join(bin, "qubes-sim"), "init", "--isolation", filepath.Join(dir, "m"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "isolation mode needs root") {
		t.Fatalf("init --isolation as nobody: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "m", "machine.json")); err == nil {
		t.Fatal("a machine was created")
	}
}
