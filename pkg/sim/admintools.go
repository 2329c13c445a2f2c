package sim

import (
	"bufio"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// adminTools are the qvm-* commands that read and change qubes state. Each
// mirrors its qubesadmin tool (qubes-core-admin-client qubesadmin/tools):
// argparse usage and "PROG: error: ..." texts, exit 2 for command-line errors
// (an unknown VM included), exit 1 for errors qubesd reports.
var adminTools = map[string]tool{
	"qvm-create":   qvmCreate,
	"qvm-prefs":    qvmPrefs,
	"qubes-prefs":  qubesPrefs,
	"qvm-tags":     qvmTags,
	"qvm-features": qvmFeatures,
	"qvm-service":  qvmService,
	"qvm-check":    qvmCheck,
	"qvm-ls":       qvmLs,
	"qvm-remove":   qvmRemove,
}

// qaParser is a small argparse look-alike: options may appear anywhere
// before "--", long options may be abbreviated to a unique prefix, short
// flags may be clustered (-qf) and take their value attached (-lred).
//
// Known difference: argparse consumes all optional positionals in the first
// run of positionals, so "qvm-prefs vm -D memory" is an error there; here
// positionals after an option are still accepted.
type qaParser struct {
	c     *Call
	prog  string
	usage string // exactly as argparse prints it at 80 columns, with "usage: "
	flags []*qaFlag
	// common QubesArgumentParser options
	verbose, quiet int
}

type qaFlag struct {
	names []string // in declaration order: argparse joins them with "/"
	// nargs: 0 flag, 1 one value, -1 one or more values (nargs='+').
	nargs int
	set   func(vals []string) error
}

// parseError is an argparse error: usage, then "PROG: error: MSG", exit 2.
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error {
	return &parseError{msg: fmt.Sprintf(format, a...)}
}

// errHelpShown ends a tool successfully after --help or --version.
var errHelpShown = errors.New("help shown")

func newQAParser(c *Call, usage string) *qaParser {
	p := &qaParser{c: c, prog: c.Name, usage: usage}
	p.add(0, func([]string) error { p.verbose++; return nil }, "--verbose", "-v")
	p.add(0, func([]string) error { p.quiet++; return nil }, "--quiet", "-q")
	p.add(0, func([]string) error {
		fmt.Fprint(p.c.Stdio.Out, p.usage)
		return errHelpShown
	}, "--help", "-h")
	p.add(0, func([]string) error {
		fmt.Fprintf(p.c.Stdio.Out, "%s (Qubes OS admin client tools, simulated by qubes-sim)\n", p.prog)
		return errHelpShown
	}, "--version")
	p.add(0, func([]string) error { return nil }, "--force-root")
	return p
}

func (p *qaParser) add(nargs int, set func([]string) error, names ...string) {
	p.flags = append(p.flags, &qaFlag{names: names, nargs: nargs, set: set})
}

func (p *qaParser) boolFlag(dst *bool, names ...string) {
	p.add(0, func([]string) error { *dst = true; return nil }, names...)
}

func (p *qaParser) strFlag(dst *string, names ...string) {
	p.add(1, func(v []string) error { *dst = v[0]; return nil }, names...)
}

func (p *qaParser) listFlag(dst *[]string, names ...string) {
	p.add(1, func(v []string) error { *dst = append(*dst, v[0]); return nil }, names...)
}

func (p *qaParser) multiFlag(dst *[]string, names ...string) {
	p.add(-1, func(v []string) error { *dst = v; return nil }, names...)
}

// verbosity is QubesArgumentParser's verbose - quiet (1 by default).
func (p *qaParser) verbosity() int { return 1 + p.verbose - p.quiet }

func (f *qaFlag) display() string { return strings.Join(f.names, "/") }

func looksLikeOption(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	// argparse treats "-5" as a positional when no option looks numeric.
	if s[1] >= '0' && s[1] <= '9' {
		return false
	}
	return true
}

func (p *qaParser) lookupLong(name string) (*qaFlag, error) {
	var prefix []*qaFlag
	var prefixNames []string
	for _, f := range p.flags {
		for _, n := range f.names {
			if n == name {
				return f, nil
			}
			if strings.HasPrefix(n, "--") && strings.HasPrefix(n, name) {
				prefix = append(prefix, f)
				prefixNames = append(prefixNames, n)
			}
		}
	}
	switch len(prefix) {
	case 0:
		return nil, nil
	case 1:
		return prefix[0], nil
	}
	return nil, usageErrorf("ambiguous option: %s could match %s", name, strings.Join(prefixNames, ", "))
}

func (p *qaParser) lookupShort(name string) *qaFlag {
	for _, f := range p.flags {
		for _, n := range f.names {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// parse consumes the options and returns the positional arguments and the
// unrecognised options, which argparse reports only after everything else.
func (p *qaParser) parse(args []string) (pos, unknown []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !looksLikeOption(a) {
			pos = append(pos, a)
			continue
		}
		var f *qaFlag
		var inline *string
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a, "=")
			if f, err = p.lookupLong(name); err != nil {
				return nil, nil, err
			}
			if hasVal {
				inline = &val
			}
		} else {
			f = p.lookupShort(a[:2])
			if f != nil && len(a) > 2 {
				rest := a[2:]
				if f.nargs == 0 {
					// clustered short flags: -qf
					if err := f.set(nil); err != nil {
						return nil, nil, err
					}
					args = append(args[:i+1], append([]string{"-" + rest}, args[i+1:]...)...)
					continue
				}
				rest = strings.TrimPrefix(rest, "=")
				inline = &rest
			}
		}
		if f == nil {
			unknown = append(unknown, a)
			continue
		}
		var vals []string
		switch {
		case f.nargs == 0:
			if inline != nil {
				return nil, nil, usageErrorf("argument %s: ignored explicit argument %s", f.display(), pyRepr(*inline))
			}
		case inline != nil:
			vals = []string{*inline}
		case f.nargs == 1:
			if i+1 >= len(args) || looksLikeOption(args[i+1]) {
				return nil, nil, usageErrorf("argument %s: expected one argument", f.display())
			}
			i++
			vals = []string{args[i]}
		default:
			for i+1 < len(args) && !looksLikeOption(args[i+1]) && args[i+1] != "--" {
				i++
				vals = append(vals, args[i])
			}
			if len(vals) == 0 {
				return nil, nil, usageErrorf("argument %s: expected at least one argument", f.display())
			}
		}
		if err := f.set(vals); err != nil {
			return nil, nil, err
		}
	}
	return pos, unknown, nil
}

// fail reports err the way the tool would and returns the exit status:
// argparse errors print the usage and exit 2, qubesd refusals exit 1.
func (p *qaParser) fail(err error) int {
	var pe *parseError
	switch {
	case errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &pe):
		fmt.Fprint(p.c.Stdio.Err, p.usage)
		fmt.Fprintf(p.c.Stdio.Err, "%s: error: %s\n", p.prog, pe.msg)
		return 2
	case errors.Is(err, ErrNoSuchProperty):
		// qvm-prefs: parser.error('no such property: ...')
		fmt.Fprint(p.c.Stdio.Err, p.usage)
		fmt.Fprintf(p.c.Stdio.Err, "%s: error: %s\n", p.prog, err)
		return 2
	}
	fmt.Fprintf(p.c.Stdio.Err, "%s: error: %s\n", p.prog, runtimeMsg(err))
	return 1
}

// runtimeMsg is the text qubesadmin shows for a qubesd error; our own
// simulator failures (I/O) keep their wrapped context.
func runtimeMsg(err error) string {
	var pe *PropError
	if errors.As(err, &pe) {
		return pe.Msg
	}
	return err.Error()
}

// checkPositionals enforces argparse's positional rules: required ones
// missing, then surplus ones and unknown options as "unrecognized arguments".
func checkPositionals(pos, unknown []string, required []string, max int) error {
	if len(pos) < len(required) {
		return usageErrorf("the following arguments are required: %s", strings.Join(required[len(pos):], ", "))
	}
	extra := unknown
	if max >= 0 && len(pos) > max {
		extra = append(append([]string{}, pos[max:]...), unknown...)
	}
	if len(extra) > 0 {
		return usageErrorf("unrecognized arguments: %s", strings.Join(extra, " "))
	}
	return nil
}

// resolveDomains maps VMNAME arguments to domains as VmNameAction does:
// shell wildcards expand over all domains, an unknown name is a parser error.
func resolveDomains(st *State, names []string) ([]*Domain, error) {
	var order []string
	seen := map[string]bool{}
	for _, n := range names {
		if strings.ContainsAny(n, "*?[!]") {
			for _, dn := range st.Names() {
				if ok, _ := path.Match(n, dn); ok && !seen[dn] {
					seen[dn] = true
					order = append(order, dn)
				}
			}
			continue
		}
		if !seen[n] {
			seen[n] = true
			order = append(order, n)
		}
	}
	out := make([]*Domain, 0, len(order))
	for _, n := range order {
		d := st.Domain(n)
		if d == nil {
			return nil, usageErrorf("no such domain: %s", pyRepr(n))
		}
		out = append(out, d)
	}
	return out, nil
}

// allDomains is --all: every domain but the AdminVM, minus --exclude.
func allDomains(st *State, exclude []string) []*Domain {
	var out []*Domain
	for _, n := range st.Names() {
		d := st.Domains[n]
		if d.Class == AdminVM || contains(exclude, n) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// printTable is qubesadmin.tools.print_table, which pipes rows through
// `column -t -s $'\x1f'`: every column but the last is padded to its width and
// followed by two spaces.
func printTable(w *bufio.Writer, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	width := map[int]int{}
	for _, r := range rows {
		for i, cell := range r {
			if len([]rune(cell)) > width[i] {
				width[i] = len([]rune(cell))
			}
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			if i == len(r)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(cell)
			b.WriteString(strings.Repeat(" ", width[i]-len([]rune(cell))+2))
		}
		w.WriteString(b.String())
		w.WriteByte('\n')
	}
}

// sortedKeys returns m's keys sorted. Qubes keeps features in insertion
// order; the state file is a JSON object, so the simulator lists them sorted.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
