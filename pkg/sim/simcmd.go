package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// MachineHooks let other parts of the simulator act when the machine boots
// (init, reboot): Boot runs after dom0 is up and before the autostart VMs
// start (the systemd layer: dom0 units, linger).
var MachineHooks struct {
	Boot []func(m *Machine) error
}

// runSim runs a qubes-sim management subcommand.
func runSim(ctx context.Context, args []string, stdio Stdio) int {
	if len(args) == 0 {
		usage(stdio.Err)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stdio.Err, "qubes-sim %s: %v\n", args[0], err)
		return 1
	}
	machine := func(dir string) (*Machine, error) { return Open(dir) }
	switch cmd, rest := args[0], args[1:]; cmd {
	case supervisorMode:
		if len(rest) != 2 {
			return 2
		}
		return runSupervisor(rest[0], rest[1])
	case "init":
		iso := false
		if len(rest) > 0 && rest[0] == "--isolation" {
			iso, rest = true, rest[1:]
		}
		if len(rest) != 1 {
			return usageErr(stdio, "init [--isolation] DIR")
		}
		if err := InitMachine(rest[0], iso); err != nil {
			return fail(err)
		}
		return 0
	case "env":
		if len(rest) != 1 {
			return usageErr(stdio, "env DIR")
		}
		m, err := machine(rest[0])
		if err != nil {
			return fail(err)
		}
		for _, kv := range m.DomainEnv(Dom0, "user") {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(stdio.Out, "export %s=%s\n", k, shellQuote(v))
		}
		return 0
	case "vm", "dom0":
		want := 3
		if cmd == "dom0" {
			want = 2
		}
		if len(rest) < want+1 || rest[want-1] != "--" {
			if cmd == "vm" {
				return usageErr(stdio, "vm DIR NAME -- CMD...")
			}
			return usageErr(stdio, "dom0 DIR -- CMD...")
		}
		m, err := machine(rest[0])
		if err != nil {
			return fail(err)
		}
		argv := rest[want:]
		if cmd == "vm" {
			// Exactly what qvm-run --pass-io does, from dom0.
			c := &Call{Ctx: ctx, Name: "qvm-run", Args: append([]string{"--pass-io", "--no-gui", "--", rest[1]}, argv...),
				Stdio: stdio, Machine: m, Domain: Dom0}
			return qvmRun(c)
		}
		return m.RunInDom0(ctx, argv, stdio)
	case "install":
		if len(rest) < 3 {
			return usageErr(stdio, "install DIR DOMAIN SRC:DEST[:MODE]...")
		}
		m, err := machine(rest[0])
		if err != nil {
			return fail(err)
		}
		for _, spec := range rest[2:] {
			if err := m.Install(rest[1], spec); err != nil {
				return fail(err)
			}
		}
		return 0
	case "reboot":
		if len(rest) != 1 {
			return usageErr(stdio, "reboot DIR")
		}
		m, err := machine(rest[0])
		if err != nil {
			return fail(err)
		}
		if err := m.Shutdown(); err != nil {
			return fail(err)
		}
		if err := m.Boot(); err != nil {
			return fail(err)
		}
		return 0
	case "shutdown":
		if len(rest) != 1 {
			return usageErr(stdio, "shutdown DIR")
		}
		m, err := machine(rest[0])
		if err != nil {
			return fail(err)
		}
		if err := m.Shutdown(); err != nil {
			return fail(err)
		}
		return 0
	case "tools":
		for _, n := range ToolNames() {
			fmt.Fprintln(stdio.Out, n)
		}
		return 0
	case "-h", "--help", "help":
		usage(stdio.Out)
		return 0
	default:
		usage(stdio.Err)
		return 2
	}
}

func usageErr(stdio Stdio, synopsis string) int {
	fmt.Fprintf(stdio.Err, "usage: qubes-sim %s\n", synopsis)
	return 2
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// InitMachine creates a machine in dir, links the simulated tools into its
// bin/ and vmbin/ and boots it.
func InitMachine(dir string, isolation bool) error {
	if isolation {
		if err := CheckIsolation(); err != nil {
			return err
		}
	}
	m, err := CreateMachine(dir, Info{Isolation: isolation})
	if err != nil {
		return err
	}
	if err := m.LinkTools(); err != nil {
		return err
	}
	return m.Boot()
}

// LinkTools links every simulated tool, under its real name, to this binary:
// dom0's tools into bin/, the VMs' into vmbin/.
func (m *Machine) LinkTools() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for _, name := range ToolNames() {
		for _, place := range []struct {
			dir string
			ok  bool
		}{{m.Dom0BinDir(), toolInDom0(name)}, {m.VMBinDir(), toolInVM(name)}} {
			link := filepath.Join(place.dir, name)
			os.Remove(link)
			if !place.ok {
				continue
			}
			if err := os.MkdirAll(place.dir, 0o755); err != nil {
				return err
			}
			if err := os.Symlink(exe, link); err != nil {
				return fmt.Errorf("link %s: %w", name, err)
			}
		}
	}
	// qubesd, beside dom0's tools: where /usr/bin/qubesd of qubesd.service
	// resolves (see runQubesd). Not a tool: it logs no invocation.
	qd := filepath.Join(m.Dom0BinDir(), qubesdName)
	os.Remove(qd)
	if err := os.Symlink(exe, qd); err != nil {
		return fmt.Errorf("link %s: %w", qubesdName, err)
	}
	return nil
}

// Boot brings the machine up as Qubes boots: dom0, the machine boot hooks,
// then every VM with autostart=True.
func (m *Machine) Boot() error {
	if err := m.EnsureRunning(Dom0); err != nil {
		return err
	}
	for _, h := range MachineHooks.Boot {
		if err := h(m); err != nil {
			return fmt.Errorf("boot: %w", err)
		}
	}
	st, err := m.Load()
	if err != nil {
		return err
	}
	var auto []string
	for _, n := range st.Names() {
		if n == Dom0 {
			continue
		}
		if on, err := st.Domain(n).PropBool(st, "autostart"); err == nil && on {
			auto = append(auto, n)
		}
	}
	var errs []error
	for _, n := range auto {
		if err := m.EnsureRunning(n); err != nil {
			errs = append(errs, fmt.Errorf("autostart %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops every domain, VMs first and dom0 last, waits until all
// their processes are gone, kills any supervisor of this machine that
// would not stop and every process the machine started that outlived its
// supervisor (see killStrays).
func (m *Machine) Shutdown() error {
	st, err := m.Load()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, n := range st.Names() {
		if n == Dom0 || !m.Alive(n) {
			continue
		}
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			if err := m.StopDomain(n, true); err != nil && !errors.Is(err, ErrHalted) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	if m.Alive(Dom0) {
		if err := m.StopDomain(Dom0, true); err != nil && !errors.Is(err, ErrHalted) {
			errs = append(errs, err)
		}
	}
	for _, pid := range m.supervisorPids() {
		unix.Kill(pid, unix.SIGKILL)
	}
	// What a killed supervisor left: processes re-parented away from it,
	// and its qrexec socket in dom0.
	m.killStrays("")
	for _, n := range st.Names() {
		m.removeStaleQrexecSocket(n)
	}
	return errors.Join(errs...)
}

// supervisorPids lists the living supervisors of this machine.
func (m *Machine) supervisorPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, comm, err := procStat(pid); err == nil && comm == supervisorComm && m.supervisorDomain(pid) != "" {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// RunInDom0 runs argv in dom0 (its namespaces, its environment) with the
// caller's stdio, as a dom0 terminal would: one argument is a shell command
// line, several are an argv.
func (m *Machine) RunInDom0(ctx context.Context, argv []string, stdio Stdio) int {
	if err := m.EnsureRunning(Dom0); err != nil {
		fmt.Fprintf(stdio.Err, "qubes-sim dom0: %v\n", err)
		return ExitProblem
	}
	req := request{Op: opSpawn, Argv: argv}
	if len(argv) == 1 {
		req.Shell = true
	}
	code, err := m.call(ctx, Dom0, req, stdio, ioOpts{passIO: true})
	if err != nil {
		fmt.Fprintf(stdio.Err, "qubes-sim dom0: %v\n", err)
	}
	return code
}

// Install copies SRC (a host file or directory) to DEST inside domain,
// creating parent directories; spec is SRC:DEST[:MODE] with MODE in octal.
// Installing into a TemplateVM is what its AppVMs see after their next start.
func (m *Machine) Install(domain, spec string) error {
	parts := strings.Split(spec, ":")
	var mode fs.FileMode
	if len(parts) >= 3 {
		if v, err := strconv.ParseUint(parts[len(parts)-1], 8, 32); err == nil {
			mode = fs.FileMode(v)
			parts = parts[:len(parts)-1]
		}
	}
	if len(parts) < 2 {
		return fmt.Errorf("install %q: want SRC:DEST[:MODE]", spec)
	}
	src, dest := strings.Join(parts[:len(parts)-1], ":"), parts[len(parts)-1]
	if !filepath.IsAbs(dest) {
		return fmt.Errorf("install %q: DEST must be an absolute path inside %s", spec, domain)
	}
	st, err := m.Load()
	if err != nil {
		return err
	}
	if st.Domain(domain) == nil {
		return fmt.Errorf("install: %w: %q", ErrNoDomain, domain)
	}
	host, err := m.ResolveInRoot(domain, dest)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if fi.IsDir() {
		return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			to := filepath.Join(host, rel)
			info, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() {
				return os.MkdirAll(to, info.Mode().Perm()|0o700)
			}
			return installFile(p, to, info.Mode().Perm())
		})
	}
	if mode == 0 {
		mode = fi.Mode().Perm()
	}
	return installFile(src, host, mode)
}

// installFile copies src to dst atomically (a running process keeps the
// old inode, as with a package update).
func installFile(src, dst string, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".install*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
