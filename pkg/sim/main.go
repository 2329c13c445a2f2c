package sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Stdio is the standard streams of a simulated command. They are files, not
// io.Readers, because the simulator hands them to processes it spawns.
type Stdio struct {
	In       *os.File
	Out, Err *os.File
}

// OSStdio returns the process's own streams.
func OSStdio() Stdio { return Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// Call is one invocation of a simulated tool.
type Call struct {
	Ctx   context.Context
	Name  string   // tool name (argv[0] base name)
	Args  []string // arguments after argv[0]
	Stdio Stdio
	// Machine is the machine the tool acts on (from $QUBES_SIM_DIR).
	Machine *Machine
	// Domain is the domain the tool runs in (from $QUBES_SIM_DOMAIN; dom0 if unset).
	Domain string
}

// Errorf prints a message to the call's stderr in the "tool: message" form the
// Qubes tools use, and returns code.
func (c *Call) Errorf(code int, format string, a ...any) int {
	fmt.Fprintf(c.Stdio.Err, "%s: %s\n", c.Name, fmt.Sprintf(format, a...))
	return code
}

// Outf prints to the call's stdout.
func (c *Call) Outf(format string, a ...any) {
	fmt.Fprintf(c.Stdio.Out, format, a...)
}

// A tool implements one simulated Qubes command and returns its exit status.
type tool func(c *Call) int

// tools is every command the simulator provides under its real name.
// adminTools (qvm-* state tools), runtimeTools (execution, qrexec) and
// systemdTools (systemctl, loginctl) live with their implementations.
func tools() map[string]tool {
	all := map[string]tool{}
	for _, set := range []map[string]tool{adminTools, runtimeTools, systemdTools} {
		for n, t := range set {
			all[n] = t
		}
	}
	return all
}

// lookupTool finds a tool without building the merged map of tools().
func lookupTool(name string) (tool, bool) {
	for _, set := range []map[string]tool{adminTools, runtimeTools, systemdTools} {
		if t, ok := set[name]; ok {
			return t, true
		}
	}
	return nil, false
}

// ToolNames lists the simulated commands, sorted.
func ToolNames() []string {
	var out []string
	for n := range tools() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Main is the entry point of the qubes-sim binary. Called under a tool's name
// it runs that tool; called as qubes-sim it runs a management subcommand.
func Main(argv []string, stdio Stdio) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	name := filepath.Base(argv[0])
	if t, ok := lookupTool(name); ok {
		return runTool(ctx, t, name, argv[1:], stdio)
	}
	if name == qubesdName {
		return runQubesd(ctx)
	}
	return runSim(ctx, argv[1:], stdio)
}

func runTool(ctx context.Context, t tool, name string, args []string, stdio Stdio) int {
	m, err := FromEnv()
	if err != nil {
		fmt.Fprintf(stdio.Err, "%s: %v\n", name, err)
		return 1
	}
	dom := os.Getenv(DomainEnv)
	if dom == "" {
		dom = Dom0
	}
	c := &Call{Ctx: ctx, Name: name, Args: args, Stdio: stdio, Machine: m, Domain: dom}
	start := time.Now()
	code := t(c)
	m.Record(Invocation{
		Kind: "tool", Tool: name, Domain: dom, Argv: append([]string{name}, args...),
		Start: start, Duration: float64(time.Since(start).Microseconds()) / 1000, Exit: code,
	})
	return code
}

// usage prints the qubes-sim synopsis.
func usage(w io.Writer) {
	fmt.Fprint(w, `usage: qubes-sim COMMAND [ARGS...]

Simulated Qubes OS machine for tests and demos.

commands:
  init [--isolation] DIR           create a machine with dom0 and boot it
  env DIR                          print shell exports for a shell in dom0
  vm DIR NAME -- CMD...            run CMD inside VM NAME as qvm-run would
  dom0 DIR -- CMD...               run CMD inside dom0 (its namespace, its env)
  install DIR DOMAIN SRC:DEST...   put files into a domain's filesystem
  reboot DIR                       stop everything, boot as Qubes would
  shutdown DIR                     stop every domain and the machine's processes
  tools                            list the simulated commands
`)
}
