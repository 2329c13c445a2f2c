package sim_test

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
	"github.com/qubes-claw/qubes-claw/pkg/testwait"
)

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && b[i+2] != 'Z'
}

// domainProcs lists host processes running in domain of machine dir.
func domainProcs(dir, domain string) []simtest.Proc {
	var out []simtest.Proc
	for _, p := range simtest.Leftovers(dir) {
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/environ")
		if bytes.Contains(env, []byte("\x00"+sim.DomainEnv+"="+domain+"\x00")) {
			out = append(out, p)
		}
	}
	return out
}

func TestRuntimeShutdownKillsEverything(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("vm")
	m.MustRun("qvm-start", "vm")
	pidFile := filepath.Join(t.TempDir(), "pid")
	// A daemon that double-forks into its own session: it is re-parented to
	// the supervisor (a subreaper), not to init.
	r := m.VM("vm", "setsid sh -c 'sleep 1000 & echo $! > "+pidFile+"' </dev/null >/dev/null 2>&1 &")
	if r.Code != 0 {
		t.Fatalf("start daemon: %v", r)
	}
	var daemon int
	for i := 0; i < 2000 && daemon == 0; i++ {
		b, _ := os.ReadFile(pidFile)
		daemon, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if daemon == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if daemon == 0 || !alive(daemon) {
		t.Fatalf("daemon did not start (pid %d)", daemon)
	}

	// A stream from the VM that never ends by itself.
	stream := exec.Command(filepath.Join(m.Dir, "bin", "qvm-run"), "-p", "vm", "while :; do echo tick; sleep 0.01; done")
	stream.Env = m.Env()
	out, err := stream.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(out)
	if line, err := rd.ReadString('\n'); err != nil || line != "tick\n" {
		t.Fatalf("stream: %q %v", line, err)
	}

	if r := m.Host("qvm-shutdown", "--wait", "vm"); r.Code != 0 {
		t.Fatalf("qvm-shutdown --wait: %v", r)
	}
	rest, _ := io.ReadAll(rd)
	for _, l := range strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n") {
		if l != "tick" && l != "" {
			t.Errorf("stream ended with a partial line %q", l)
		}
	}
	err = stream.Wait()
	var ee *exec.ExitError
	if err == nil || !errorsAs(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("stream exit: %v, want the remote's 143 (killed by TERM)", err)
	}
	if alive(daemon) {
		t.Errorf("double-forked daemon %d survived the shutdown", daemon)
	}
	if left := domainProcs(m.Dir, "vm"); len(left) > 0 {
		t.Errorf("processes of vm left: %v", left)
	}
	if m.Running("vm") {
		t.Error("vm still running")
	}
}

func TestRuntimeDeadSupervisorIsHalted(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("sa")
	m.MustRun("qvm-start", "sa")
	b, err := os.ReadFile(filepath.Join(m.Sim.RunDir(), "sa.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000 && alive(pid); i++ {
		time.Sleep(time.Millisecond)
	}
	// The lock outlives the zombie state alive() sees: the leader thread
	// turns zombie while the other threads may still hold the descriptor
	// table, and a child being forked holds a copy until its exec or its
	// death by Pdeathsig. Let the domain's processes go first.
	testwait.For(t, 20*time.Second, "the processes of sa to die with their supervisor", func() bool {
		return len(domainProcs(m.Dir, "sa")) == 0
	})
	if m.Running("sa") {
		t.Fatal("qvm-check --running says a domain with a dead supervisor runs")
	}
	if r := m.Host("qvm-ls", "--raw-data", "--fields", "name,state", "sa"); !strings.Contains(r.Stdout, "Halted") {
		t.Errorf("qvm-ls: %v", r)
	}
	if r := m.Host("qrexec-client", "-d", "sa", "user:true"); r.Code != 125 {
		t.Errorf("qrexec-client to a dead domain: %v", r)
	}
	if r := m.Host("qvm-run", "-p", "sa", "echo back"); r.Code != 0 || r.Stdout != "back\n" {
		t.Fatalf("restart after a crash: %v", r)
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func TestSimShutdownLeavesNothing(t *testing.T) {
	m := simtest.New(t)
	m.Template("tpl")
	m.AppVM("a", "tpl")
	m.StandaloneVM("b")
	m.MustRun("qvm-start", "a", "b")
	m.VM("a", "sleep 1000 </dev/null >/dev/null 2>&1 &")
	m.Dom0("sleep 1000 </dev/null >/dev/null 2>&1 &")
	if len(simtest.Leftovers(m.Dir)) < 5 {
		t.Fatalf("expected supervisors and sleeps, found %v", simtest.Leftovers(m.Dir))
	}
	m.Shutdown()
	if left := simtest.Leftovers(m.Dir); len(left) > 0 {
		t.Fatalf("left after qubes-sim shutdown: %v", left)
	}
	st, err := m.Sim.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Names() {
		if p := st.Domain(n).Power; p != sim.Halted {
			t.Errorf("%s is %s after shutdown", n, p)
		}
	}
}

func TestSimRebootAutostart(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("auto")
	m.StandaloneVM("manual")
	m.MustRun("qvm-prefs", "auto", "autostart", "True")
	m.MustRun("qvm-start", "manual")
	m.WriteFile("dom0", "/run/qubes/policy.d/10-runtime.policy", []byte(""), 0o664)
	m.MustRun("qubes-sim", "reboot", m.Dir)
	if !m.Running("auto") || m.Running("manual") {
		t.Errorf("after reboot: auto running %v, manual running %v", m.Running("auto"), m.Running("manual"))
	}
	if _, err := os.Stat(m.Sim.Path("dom0", "/run/qubes/policy.d/10-runtime.policy")); err == nil {
		t.Error("dom0's /run survived the reboot")
	}
}

func TestSimSubcommands(t *testing.T) {
	m := simtest.New(t)
	r := m.MustRun("qubes-sim", "env", m.Dir)
	if !strings.Contains(r.Stdout, "export QUBES_SIM_DIR='"+m.Dir+"'\n") || !strings.Contains(r.Stdout, "export QUBES_SIM_DOMAIN='dom0'\n") {
		t.Errorf("env: %q", r.Stdout)
	}
	// The exports are valid shell.
	sh := exec.Command("sh", "-c", r.Stdout+`printf %s "$QUBES_CLAW_ROOT"`)
	if out, err := sh.Output(); err != nil || string(out) != m.Sim.Root("dom0") {
		t.Errorf("eval env: %q %v", out, err)
	}
	r = m.Dom0(`echo "$QUBES_SIM_DOMAIN ${HOME#$QUBES_CLAW_ROOT}"; command -v qvm-run; command -v qrexec-client-vm || true`)
	if r.Code != 0 || r.Stdout != "dom0 /home/user\n"+filepath.Join(m.Dir, "bin", "qvm-run")+"\n" {
		t.Errorf("dom0: %v", r)
	}
	if r := m.Dom0Input([]byte("x"), "cat"); r.Stdout != "x" {
		t.Errorf("dom0 stdin: %v", r)
	}
	m.StandaloneVM("sa")
	r = m.VM("sa", "command -v qrexec-client-vm; command -v qvm-run || echo none")
	if r.Stdout != filepath.Join(m.Dir, "vmbin", "qrexec-client-vm")+"\nnone\n" {
		t.Errorf("VM PATH: %v", r)
	}
	r = m.VM("sa", "sh", "-c", "exit 5")
	if r.Code != 5 {
		t.Errorf("vm argv: %v", r)
	}
	// install: files and directories, modes, into the domain root.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o600)
	m.MustRun("qubes-sim", "install", m.Dir, "sa", filepath.Join(src, "f")+":/opt/x/f:0750", src+":/opt/tree")
	fi, err := os.Stat(m.Sim.Path("sa", "/opt/x/f"))
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("installed file: %v %v", fi, err)
	}
	if b, err := os.ReadFile(m.Sim.Path("sa", "/opt/tree/f")); err != nil || string(b) != "data" {
		t.Errorf("installed tree: %q %v", b, err)
	}
	if r := m.Host("qubes-sim", "install", m.Dir, "nope", filepath.Join(src, "f")+":/x"); r.Code == 0 {
		t.Errorf("install into a missing domain: %v", r)
	}
	r = m.MustRun("qubes-sim", "tools")
	for _, tool := range []string{"qvm-run", "qrexec-client", "qrexec-client-vm", "qvm-start", "qvm-shutdown"} {
		if !strings.Contains(r.Stdout, tool+"\n") {
			t.Errorf("tools lacks %s", tool)
		}
	}
}

func TestRuntimeSpawnAPI(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("sa")
	if _, err := m.Sim.Spawn("sa", sim.SpawnRequest{Argv: []string{"true"}}); err == nil {
		t.Fatal("Spawn in a halted domain without Autostart succeeded")
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Sim.Spawn("sa", sim.SpawnRequest{
		Argv: []string{"sh", "-c", `echo "$X $(pwd)"; exec sleep 1000`}, Env: []string{"X=y"},
		Dir: "/tmp", Stdout: wr, Tag: "sleeper", Autostart: true,
	})
	wr.Close()
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(rd).ReadString('\n')
	if line != "y "+m.Sim.Path("sa", "/tmp")+"\n" {
		t.Errorf("spawned output %q", line)
	}
	procs, err := m.Sim.Processes("sa")
	if err != nil || len(procs) != 1 || procs[0].Pid != p.Pid() || procs[0].Tag != "sleeper" {
		t.Fatalf("Processes: %+v %v", procs, err)
	}
	if n, err := m.Sim.SignalTag("sa", "sleeper", syscall.SIGTERM); err != nil || n != 1 {
		t.Fatalf("SignalTag: %d %v", n, err)
	}
	if code, err := p.Wait(); err != nil || code != 128+int(syscall.SIGTERM) {
		t.Fatalf("Wait: %d %v", code, err)
	}
	env := m.Sim.DomainEnv("sa", "root")
	if !contains(env, "HOME="+m.Sim.Path("sa", "/root")) || !contains(env, sim.RootEnv+"="+m.Sim.Root("sa")) {
		t.Errorf("DomainEnv: %q", env)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
