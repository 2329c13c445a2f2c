package sim

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// vmArgs parses "[--all] [--exclude VM]... VMNAME..." like qubesadmin's
// QubesArgumentParser(vmname_nargs='+') plus the tool's own options, and
// returns the named domains (all but dom0 with --all).
func vmArgs(c *Call, p *argParser) ([]string, *State, int, bool) {
	var all bool
	var exclude []string
	p.opts = append(p.opts,
		argOpt{names: []string{"--verbose", "-v"}, set: func(string) {}},
		argOpt{names: []string{"--quiet", "-q"}, set: func(string) {}},
		argOpt{names: []string{"--all"}, set: func(string) { all = true }},
		argOpt{names: []string{"--exclude"}, value: true, set: func(v string) { exclude = append(exclude, v) }},
	)
	pos, err := p.parse(c.Args)
	if err != nil {
		return nil, nil, p.fail(c, err), false
	}
	st, err := c.Machine.Load()
	if err != nil {
		return nil, nil, c.Errorf(1, "error: %v", err), false
	}
	if all {
		for _, n := range st.Names() {
			if n != Dom0 {
				pos = append(pos, n)
			}
		}
	} else if len(exclude) > 0 {
		return nil, nil, p.fail(c, &usageError{"--exclude can only be used with --all"}), false
	}
	if len(pos) == 0 && !all {
		return nil, nil, p.fail(c, &usageError{"one of the arguments --all VMNAME is required"}), false
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range pos {
		if st.Domain(n) == nil {
			return nil, nil, p.fail(c, &usageError{fmt.Sprintf("no such domain: '%s'", n)}), false
		}
		skip := seen[n]
		for _, x := range exclude {
			skip = skip || x == n
		}
		if !skip {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, st, 0, true
}

// qvmStart is qvm-start (qubesadmin/tools/qvm_start.py).
func qvmStart(c *Call) int {
	var skip bool
	p := &argParser{prog: "qvm-start", usage: "[-h] [--verbose] [--quiet] [--all] [--exclude EXCLUDE] [--skip-if-running] VMNAME [VMNAME ...]",
		opts: []argOpt{{names: []string{"--skip-if-running"}, set: func(string) { skip = true }}}}
	names, _, code, ok := vmArgs(c, p)
	if !ok {
		return code
	}
	exit := 0
	for _, n := range names {
		if n == Dom0 || c.Machine.Alive(n) {
			if skip {
				continue
			}
			fmt.Fprintf(c.Stdio.Err, "%s: error: domain %s is already running\n", c.Name, n)
			return 1
		}
		if err := c.Machine.StartDomain(n); err != nil {
			if errors.Is(err, ErrAlreadyRunning) && skip {
				continue
			}
			fmt.Fprintf(c.Stdio.Err, "%s: error: %v\n", c.Name, err)
			exit = 1
		}
	}
	return exit
}

// qvmShutdown is qvm-shutdown (qubesadmin/tools/qvm_shutdown.py).
func qvmShutdown(c *Call) int {
	var wait bool
	p := &argParser{prog: "qvm-shutdown", usage: "[-h] [--verbose] [--quiet] [--all] [--exclude EXCLUDE] [--wait] [--timeout TIMEOUT] [--force] VMNAME [VMNAME ...]",
		opts: []argOpt{
			{names: []string{"--wait"}, set: func(string) { wait = true }},
			{names: []string{"--timeout"}, value: true, set: func(string) {}},
			{names: []string{"--force"}, set: func(string) {}},
		}}
	names, _, code, ok := vmArgs(c, p)
	if !ok {
		return code
	}
	var failed []string
	for _, n := range names {
		if n == Dom0 {
			fmt.Fprintf(c.Stdio.Err, "%s: Shutdown error: Cannot shutdown dom0\n", n)
			failed = append(failed, n)
			continue
		}
		err := c.Machine.StopDomain(n, wait)
		if err != nil && !errors.Is(err, ErrHalted) {
			fmt.Fprintf(c.Stdio.Err, "%s: Shutdown error: %v\n", n, err)
			failed = append(failed, n)
		}
	}
	if wait && len(failed) > 0 {
		sort.Strings(failed)
		fmt.Fprintf(c.Stdio.Err, "%s: error: Failed to shut down: %s\n", c.Name, strings.Join(failed, ", "))
		return len(failed)
	}
	return 0
}

// qvmPause is qvm-pause and qvm-unpause.
func qvmPause(c *Call) int {
	pause := c.Name == "qvm-pause"
	p := &argParser{prog: c.Name, usage: "[-h] [--verbose] [--quiet] [--all] [--exclude EXCLUDE] VMNAME [VMNAME ...]"}
	names, st, code, ok := vmArgs(c, p)
	if !ok {
		return code
	}
	exit := 0
	for _, n := range names {
		d := st.Domain(n)
		var err error
		switch {
		case n == Dom0:
			err = errors.New("cannot pause dom0")
		case !c.Machine.Alive(n):
			err = fmt.Errorf("domain is not running: %s", n)
		case pause:
			err = c.Machine.PauseDomain(n)
		case d.Power == Paused:
			err = c.Machine.UnpauseDomain(n)
		default:
			err = fmt.Errorf("domain is not paused: %s", n)
		}
		if err != nil {
			fmt.Fprintf(c.Stdio.Err, "%s: error: %v\n", c.Name, err)
			exit = 1
		}
	}
	return exit
}
