// Package simtest runs end-to-end tests against a simulated Qubes machine
// (pkg/sim) through the real binaries: every test gets a fresh machine in
// t.TempDir(), driven by the same commands a user would type, and shut down
// at cleanup with a check that no simulator process outlives it.
//
// E2E tests call testing.Short() and skip; New does it for them.
//
// Paths: a domain's processes run on the host without a chroot (outside
// isolation mode and inside it), so an absolute path such as /tmp/x or
// /root/.config written by a command in a VM lands on the REAL host,
// shared by every test. Use ~/ (HOME), $TMPDIR (mktemp) or
// $QUBES_CLAW_ROOT-prefixed paths in commands, and Machine.Sim.Path for
// host-side checks: those point into the domain's root (see pkg/sim).
//
// Cleanup runs `qubes-sim shutdown`, which also kills processes the machine
// started that outlived a killed supervisor, then fails the test if any
// process of the machine is left.
package simtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
)

// BinDirEnv names a directory with prebuilt binaries of ./cmd/... (set by
// the Makefile after `make build`).
const BinDirEnv = "QUBES_CLAW_BIN_DIR"

// CommandTimeout bounds every command a test runs, so a hang fails the test
// instead of the whole run.
var CommandTimeout = 2 * time.Minute

var build struct {
	once sync.Once
	dir  string
	err  error
}

// Binaries returns a directory holding the binaries of every ./cmd/...
// package: $QUBES_CLAW_BIN_DIR if set, else a build made once per test
// process (removed by Main, if the package's TestMain uses it).
func Binaries(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "qubes-sim")); err != nil {
			t.Fatalf("%s=%s: %v (run make build)", BinDirEnv, dir, err)
		}
		return dir
	}
	build.once.Do(func() {
		build.dir, build.err = buildBinaries()
	})
	if build.err != nil {
		t.Fatalf("build binaries: %v", build.err)
	}
	return build.dir
}

func buildBinaries() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the qubes-claw module")
	}
	dir, err := os.MkdirTemp("", "qubes-claw-bin-")
	if err != nil {
		return "", err
	}
	// Readable by everyone: tests may run a binary as another user.
	os.Chmod(dir, 0o755)
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/...")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/...: %w\n%s", err, out)
	}
	return dir, nil
}

// Main runs the tests of a package and removes the binaries Binaries built.
// Use it from TestMain: func TestMain(m *testing.M) { simtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// Option configures New.
type Option func(*options)

type options struct{ isolation bool }

// Isolation makes a machine in isolation mode (root only; callers should
// SkipUnlessIsolation first).
func Isolation() Option { return func(o *options) { o.isolation = true } }

// SkipUnlessIsolation skips t unless isolation mode can work here: root and
// network namespaces available.
func SkipUnlessIsolation(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("isolation mode needs root")
	}
	if err := exec.Command("unshare", "--net", "--uts", "true").Run(); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
}

// Machine is a simulated machine under test.
type Machine struct {
	// Sim is the machine as pkg/sim sees it (state, paths, Spawn).
	Sim *sim.Machine
	// Dir is the machine directory; Bin holds the binaries.
	Dir, Bin string
	t        testing.TB
}

// New creates and boots a machine in a temporary directory; cleanup shuts it
// down and fails the test if a process of the machine survives. It skips
// the test in -short mode.
func New(t testing.TB, opts ...Option) *Machine {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test against the Qubes simulator (-short)")
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	bin := Binaries(t)
	dir := filepath.Join(t.TempDir(), "m")
	args := []string{"init"}
	if o.isolation {
		args = append(args, "--isolation")
	}
	args = append(args, dir)
	if out, err := exec.Command(filepath.Join(bin, "qubes-sim"), args...).CombinedOutput(); err != nil {
		t.Fatalf("qubes-sim init: %v\n%s", err, out)
	}
	sm, err := sim.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := &Machine{Sim: sm, Dir: dir, Bin: bin, t: t}
	t.Cleanup(m.cleanup)
	return m
}

func (m *Machine) cleanup() {
	t := m.t
	if out, err := exec.Command(filepath.Join(m.Bin, "qubes-sim"), "shutdown", m.Dir).CombinedOutput(); err != nil {
		t.Errorf("qubes-sim shutdown: %v\n%s", err, out)
	}
	if left := Leftovers(m.Dir); len(left) > 0 {
		for _, p := range left {
			syscall.Kill(p.Pid, syscall.SIGKILL)
		}
		t.Errorf("processes left after qubes-sim shutdown: %v", left)
	}
}

// Proc is a process found on the host.
type Proc struct {
	Pid     int
	Cmdline string
}

func (p Proc) String() string { return fmt.Sprintf("%d %q", p.Pid, p.Cmdline) }

// Leftovers lists the host processes that belong to the machine in dir: its
// supervisors and every process running with its environment.
func Leftovers(dir string) []Proc {
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if zombie(stat) {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		mine := false
		for i := 0; i+1 < len(argv); i++ {
			mine = mine || (argv[i] == "__supervise" && argv[i+1] == dir)
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			mine = mine || kv == sim.DirEnv+"="+dir
		}
		if mine {
			out = append(out, Proc{pid, strings.Join(argv, " ")})
		}
	}
	return out
}

func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// Result is the outcome of a command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
}

// Cmd describes a command to run.
type Cmd struct {
	Argv  []string
	Stdin []byte
	Env   []string // added to the dom0 environment
}

// Env is the environment of a dom0 shell (`qubes-sim env DIR`).
func (m *Machine) Env() []string {
	return append(os.Environ(), m.Sim.DomainEnv(sim.Dom0, "user")...)
}

// Run runs c on the host in dom0's environment, like a shell that evaluated
// `qubes-sim env DIR` (the quickest way to call dom0 tools). A bare tool
// name is taken from the machine's bin/.
func (m *Machine) Run(c Cmd) Result {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	path := c.Argv[0]
	if !strings.Contains(path, "/") {
		if p := filepath.Join(m.Sim.Dom0BinDir(), path); exists(p) {
			path = p
		} else if p := filepath.Join(m.Bin, path); exists(p) {
			path = p
		}
	}
	cmd := exec.CommandContext(ctx, path, c.Argv[1:]...)
	cmd.Args[0] = c.Argv[0]
	cmd.Env = append(m.Env(), c.Env...)
	cmd.Stdin = bytes.NewReader(c.Stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// A background process holding the pipes must not hang the test.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Code = 128 + int(ws.Signal())
		}
	default:
		m.t.Fatalf("run %q: %v", c.Argv, err)
	}
	if ctx.Err() != nil {
		m.t.Fatalf("run %q: timed out after %v (%v)", c.Argv, CommandTimeout, r)
	}
	return r
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Host runs argv on the host in dom0's environment (see Run).
func (m *Machine) Host(argv ...string) Result {
	m.t.Helper()
	return m.Run(Cmd{Argv: argv})
}

// Dom0 runs argv inside dom0 (`qubes-sim dom0 DIR -- argv`): its namespaces
// in isolation mode. One argument is a shell command line.
func (m *Machine) Dom0(argv ...string) Result {
	m.t.Helper()
	return m.Dom0Input(nil, argv...)
}

// Dom0Input is Dom0 with stdin.
func (m *Machine) Dom0Input(stdin []byte, argv ...string) Result {
	m.t.Helper()
	return m.Run(Cmd{Argv: append([]string{"qubes-sim", "dom0", m.Dir, "--"}, argv...), Stdin: stdin})
}

// VM runs argv in VM name as `qvm-run --pass-io` does (starting the VM if
// needed). One argument is a shell command line.
func (m *Machine) VM(name string, argv ...string) Result {
	m.t.Helper()
	return m.VMInput(name, nil, argv...)
}

// VMInput is VM with stdin.
func (m *Machine) VMInput(name string, stdin []byte, argv ...string) Result {
	m.t.Helper()
	return m.Run(Cmd{Argv: append([]string{"qubes-sim", "vm", m.Dir, name, "--"}, argv...), Stdin: stdin})
}

// MustRun runs argv on the host in dom0's environment and fails the test
// unless it exits 0.
func (m *Machine) MustRun(argv ...string) Result {
	m.t.Helper()
	r := m.Host(argv...)
	if r.Code != 0 {
		m.t.Fatalf("%q: %v", argv, r)
	}
	return r
}

// CreateVM creates a qube with qvm-create (label red unless given); extra
// are qvm-create options, e.g. "--class", "StandaloneVM" or "-t", "tpl".
func (m *Machine) CreateVM(name string, extra ...string) {
	m.t.Helper()
	argv := []string{"qvm-create"}
	if !contains(extra, "-l") && !contains(extra, "--label") {
		argv = append(argv, "-l", "red")
	}
	argv = append(append(argv, extra...), name)
	m.MustRun(argv...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Template creates a TemplateVM.
func (m *Machine) Template(name string) { m.t.Helper(); m.CreateVM(name, "--class", "TemplateVM") }

// AppVM creates an AppVM based on template.
func (m *Machine) AppVM(name, template string) { m.t.Helper(); m.CreateVM(name, "-t", template) }

// StandaloneVM creates a StandaloneVM with an empty root.
func (m *Machine) StandaloneVM(name string) {
	m.t.Helper()
	m.CreateVM(name, "--class", "StandaloneVM")
}

// Tag adds tags to a qube with qvm-tags.
func (m *Machine) Tag(vm string, tags ...string) {
	m.t.Helper()
	m.MustRun(append([]string{"qvm-tags", vm, "add"}, tags...)...)
}

// WriteFile puts data at path inside domain with `qubes-sim install`.
func (m *Machine) WriteFile(domain, path string, data []byte, mode os.FileMode) {
	m.t.Helper()
	src := filepath.Join(m.t.TempDir(), "file")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		m.t.Fatal(err)
	}
	m.Install(domain, src, path, mode)
}

// Install copies the host file src to path inside domain (`qubes-sim
// install`).
func (m *Machine) Install(domain, src, path string, mode os.FileMode) {
	m.t.Helper()
	m.MustRun("qubes-sim", "install", m.Dir, domain, fmt.Sprintf("%s:%s:%o", src, path, mode))
}

// Symlink creates a symlink at path inside domain pointing to target (a
// path as the domain sees it, e.g. /dev/tcp/127.0.0.1).
func (m *Machine) Symlink(domain, target, path string) {
	m.t.Helper()
	p := m.Sim.Path(domain, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		m.t.Fatal(err)
	}
}

// Policy writes a qrexec policy file into dom0's /etc/qubes/policy.d.
func (m *Machine) Policy(name, content string) {
	m.t.Helper()
	m.WriteFile(sim.Dom0, "/etc/qubes/policy.d/"+name, []byte(content), 0o664)
}

// Running reports whether the qube runs, as `qvm-check --running` says.
func (m *Machine) Running(name string) bool {
	m.t.Helper()
	return m.Host("qvm-check", "--running", "-q", name).Code == 0
}

// Invocations returns the invocation log.
func (m *Machine) Invocations() []sim.Invocation {
	m.t.Helper()
	inv, err := m.Sim.ReadInvocations()
	if err != nil {
		m.t.Fatal(err)
	}
	return inv
}

// CountTool counts the recorded invocations of a simulated tool.
func (m *Machine) CountTool(tool string) int {
	n := 0
	for _, inv := range m.Invocations() {
		if inv.Kind == "tool" && inv.Tool == tool {
			n++
		}
	}
	return n
}

// CountSpawns counts the processes supervisors started in domain ("" = all).
func (m *Machine) CountSpawns(domain string) int {
	n := 0
	for _, inv := range m.Invocations() {
		if inv.Kind == "spawn" && (domain == "" || inv.Domain == domain) {
			n++
		}
	}
	return n
}

// Shutdown runs `qubes-sim shutdown` now (cleanup does it again).
func (m *Machine) Shutdown() {
	m.t.Helper()
	m.MustRun("qubes-sim", "shutdown", m.Dir)
}
