package sim

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"
)

// argOpt is one option of an argparse-style command line.
type argOpt struct {
	names []string // "-p", "--pass-io"
	value bool     // takes an argument
	set   func(v string)
}

// argParser parses like Python's argparse, which the qvm-* tools use:
// clustered short flags (-pq), -uVALUE, --opt=VALUE, unique prefixes of long
// options, "--" ending options. After `remainder` positionals every further
// argument is positional (argparse.REMAINDER); remainder 0 means never.
type argParser struct {
	prog, usage string
	opts        []argOpt
	remainder   int
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// errHelp is -h/--help.
var errHelp = errors.New("help")

func (p *argParser) find(name string) (*argOpt, error) {
	var matches []*argOpt
	for i := range p.opts {
		for _, n := range p.opts[i].names {
			if n == name {
				return &p.opts[i], nil
			}
			if strings.HasPrefix(name, "--") && strings.HasPrefix(n, name) {
				matches = append(matches, &p.opts[i])
				break
			}
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return nil, &usageError{"unrecognized arguments: " + name}
	}
	var names []string
	for _, m := range matches {
		for _, n := range m.names {
			if strings.HasPrefix(n, name) {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return nil, &usageError{fmt.Sprintf("ambiguous option: %s could match %s", name, strings.Join(names, ", "))}
}

func (p *argParser) parse(args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if p.remainder > 0 && len(pos) >= p.remainder {
			pos = append(pos, args[i:]...)
			break
		}
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			return pos, nil
		case a == "-h" || a == "--help":
			return nil, errHelp
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a, "=")
			o, err := p.find(name)
			if err != nil {
				return nil, err
			}
			if o.value && !hasVal {
				if i+1 >= len(args) {
					return nil, &usageError{fmt.Sprintf("argument %s: expected one argument", strings.Join(o.names, "/"))}
				}
				i++
				val = args[i]
			} else if !o.value && hasVal {
				return nil, &usageError{fmt.Sprintf("argument %s: ignored explicit argument '%s'", strings.Join(o.names, "/"), val)}
			}
			o.set(val)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				o, err := p.find("-" + a[j:j+1])
				if err != nil {
					return nil, &usageError{"unrecognized arguments: " + a}
				}
				if o.value {
					val := a[j+1:]
					if val == "" {
						if i+1 >= len(args) {
							return nil, &usageError{fmt.Sprintf("argument %s: expected one argument", strings.Join(o.names, "/"))}
						}
						i++
						val = args[i]
					}
					o.set(val)
					break
				}
				o.set("")
			}
		default:
			pos = append(pos, a)
		}
	}
	return pos, nil
}

// fail prints an argparse error (usage line, then "prog: error: msg") and
// returns 2, or prints help and returns 0.
func (p *argParser) fail(c *Call, err error) int {
	if errors.Is(err, errHelp) {
		fmt.Fprintf(c.Stdio.Out, "usage: %s %s\n", p.prog, p.usage)
		return 0
	}
	fmt.Fprintf(c.Stdio.Err, "usage: %s %s\n%s: error: %v\n", p.prog, p.usage, p.prog, err)
	return 2
}

func isTTY(f *os.File) bool { return f != nil && term.IsTerminal(int(f.Fd())) }

// qvmRun is qvm-run (qubesadmin/tools/qvm_run.py, qubes.md §3.1) for one VM.
func qvmRun(c *Call) int {
	var (
		user                  string
		passIO, service       bool
		noShell               bool
		autostart             = true
		verbose               = 1 // qubesadmin's QubesArgumentParser default
		quiet                 int
		localCmd              string
		filterEsc             = isTTY(c.Stdio.Out)
		colorOut, colorErr    = "", ""
		noColorOut, noColorEr bool
	)
	p := &argParser{
		prog:      "qvm-run",
		usage:     "[-h] [--verbose] [--quiet] [--user USER] [--autostart] [--no-autostart] [--pass-io] [--localcmd COMMAND] [--gui] [--no-gui] [--service] [--no-shell] [--filter-escape-chars] [--no-filter-escape-chars] VMNAME COMMAND [ARGS ...]",
		remainder: 2,
		opts: []argOpt{
			{names: []string{"--verbose", "-v"}, set: func(string) { verbose++ }},
			{names: []string{"--quiet", "-q"}, set: func(string) { quiet++ }},
			{names: []string{"--user", "-u"}, value: true, set: func(v string) { user = v }},
			{names: []string{"--autostart", "--auto", "-a"}, set: func(string) { autostart = true }},
			{names: []string{"--no-autostart", "--no-auto", "-n"}, set: func(string) { autostart = false }},
			{names: []string{"--pass-io", "-p"}, set: func(string) { passIO = true }},
			{names: []string{"--localcmd"}, value: true, set: func(v string) { localCmd = v }},
			// There is no GUI in the simulator: qubes.WaitForSession is never called.
			{names: []string{"--gui"}, set: func(string) {}},
			{names: []string{"--no-gui", "--nogui"}, set: func(string) {}},
			{names: []string{"--colour-output", "--color-output"}, value: true, set: func(v string) { colorOut = v }},
			{names: []string{"--colour-stderr", "--color-stderr"}, value: true, set: func(v string) { colorErr = v }},
			{names: []string{"--no-colour-output", "--no-color-output"}, set: func(string) { noColorOut = true }},
			{names: []string{"--no-colour-stderr", "--no-color-stderr"}, set: func(string) { noColorEr = true }},
			{names: []string{"--filter-escape-chars"}, set: func(string) { filterEsc = true }},
			{names: []string{"--no-filter-escape-chars"}, set: func(string) { filterEsc = false }},
			{names: []string{"--service"}, set: func(string) { service = true }},
			{names: []string{"--no-shell"}, set: func(string) { noShell = true }},
		},
	}
	pos, err := p.parse(c.Args)
	if err != nil {
		return p.fail(c, err)
	}
	if len(pos) < 2 {
		missing := "VMNAME, COMMAND"
		if len(pos) == 1 {
			missing = "COMMAND"
		}
		return p.fail(c, &usageError{"the following arguments are required: " + missing})
	}
	name, cmd, cmdArgs := pos[0], pos[1], pos[2:]
	if c.Domain != Dom0 {
		return c.Errorf(1, "error: running commands in other qubes is only available in dom0")
	}
	st, err := c.Machine.Load()
	if err != nil {
		return c.Errorf(1, "error: %v", err)
	}
	d := st.Domain(name)
	if d == nil {
		return p.fail(c, &usageError{fmt.Sprintf("no such domain: '%s'", name)})
	}
	if localCmd != "" && !passIO {
		return p.fail(c, &usageError{"--localcmd have no effect without --pass-io"})
	}
	if noColorOut || !filterEsc {
		colorOut = ""
	} else if colorOut == "" {
		colorOut = "31"
	}
	if noColorEr {
		colorErr = ""
	} else if colorErr == "" && isTTY(c.Stdio.Err) {
		colorErr = "31"
	}
	v := verbose - quiet
	if passIO {
		v--
	}
	m := c.Machine
	running := m.Alive(name)
	if !autostart && !running {
		if v > 0 {
			fmt.Fprintf(c.Stdio.Err, "Qube %s is not running, skipping\n", name)
		}
		return 1
	}
	if v > 0 {
		fmt.Fprintf(c.Stdio.Err, "Running '%s' on %s\n", cmd, name)
	}
	if user == "" && name != Dom0 {
		// What qrexec-daemon does with DEFAULT:, done here with the state
		// at hand so the supervisor need not read it again.
		user = defaultUser(st, d)
	}
	if autostart && (!running || d.Power == Paused) {
		if err := m.EnsureRunning(name); err != nil {
			fmt.Fprintf(c.Stdio.Err, "%s: %v\n", name, err)
			return 255
		}
	}
	if colorOut != "" {
		fmt.Fprintf(c.Stdio.Out, "\033[0;%sm", colorOut)
		defer fmt.Fprint(c.Stdio.Out, "\033[0m")
	}
	if colorErr != "" {
		fmt.Fprintf(c.Stdio.Err, "\033[0;%sm", colorErr)
		defer fmt.Fprint(c.Stdio.Err, "\033[0m")
	}
	o := ioOpts{passIO: passIO, filterOut: filterEsc, filterErr: filterEsc || isTTY(c.Stdio.Err)}
	if localCmd != "" {
		o.local = shellCommand(localCmd, c.Stdio.Err)
	}
	req := qvmRunRequest(name, d, user, cmd, cmdArgs, service, noShell, &o)
	code, err := m.call(c.Ctx, name, req, c.Stdio, o)
	if err != nil && code == ExitProblem {
		fmt.Fprintf(c.Stdio.Err, "%s: %v\n", name, err)
	}
	return code
}

// qvmRunRequest is what qvm-run asks the VM: qubes.VMShell with the command
// as shell input (run here as bash -c in the VM, the same thing without the
// extra read), qubes.VMExec for --no-shell/ARGS, or the named service.
func qvmRunRequest(name string, d *Domain, user, cmd string, args []string, service, noShell bool, o *ioOpts) request {
	if user == "" {
		user = "DEFAULT"
	}
	if service {
		svc, arg := splitDescriptor(cmd)
		return request{Op: opService, Service: svc, Arg: arg, Source: Dom0, User: user}
	}
	exec := noShell || len(args) > 0
	if name == Dom0 {
		// dom0 has neither qubes.VMShell nor qubes.VMExec unless someone
		// installs them: go through the real lookup.
		if exec {
			return request{Op: opService, Service: "qubes.VMExec", Arg: vmExecArg(append([]string{cmd}, args...)), Source: Dom0, User: user}
		}
		o.prefix = []byte(cmd + "; exit\n")
		return request{Op: opService, Service: "qubes.VMShell", Source: Dom0, User: user}
	}
	env := []string{"QREXEC_REMOTE_DOMAIN=" + Dom0}
	if exec {
		return request{Op: opSpawn, Argv: append([]string{cmd}, args...), User: user, Env: env}
	}
	return request{Op: opSpawn, Argv: []string{cmd}, Shell: true, User: user, Env: env}
}

// vmExecArg encodes argv as qubes.VMExec's argument: "+" between
// arguments, "-" as "--", other bytes outside [A-Za-z0-9._] as "-XX" hex
// (qubesadmin encode_for_vmexec).
func vmExecArg(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte('+')
		}
		for j := 0; j < len(a); j++ {
			ch := a[j]
			switch {
			case ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_':
				b.WriteByte(ch)
			case ch == '-':
				b.WriteString("--")
			default:
				fmt.Fprintf(&b, "-%02X", ch)
			}
		}
	}
	return b.String()
}
