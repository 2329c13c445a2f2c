package sim

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// QubesDB is the per-VM key-value store dom0 fills when the VM starts
// (qubes-core-admin QubesVM.create_qdb_entries, qubes/ext/services.py) and
// the VM reads with qubesdb-read. The simulator keeps no separate database:
// every read computes the entries from the qubes state at that moment, which
// is what the live updates of the real one (feature changes re-export
// /qubes-service/*, qubes.md §3.7) amount to. Entries whose real value
// depends on the host (/qubes-timezone, /qubes-random-seed) or on
// networking and devices are not exported.
func qubesDB(st *State, d *Domain) map[string]string {
	db := map[string]string{
		"/name":                 d.Name,
		"/type":                 d.Class,
		"/default-user":         defaultUser(st, d),
		"/qubes-vm-type":        qubesVMType(st, d),
		"/qubes-vm-updateable":  "False",
		"/qubes-vm-persistence": qubesVMPersistence(d),
		"/qubes-debug-mode":     "0",
		"/qubes-base-template":  "",
	}
	if d.Class == TemplateVM || d.Class == StandaloneVM {
		db["/qubes-vm-updateable"] = "True"
	}
	if dbg, _ := d.PropBool(st, "debug"); dbg {
		db["/qubes-debug-mode"] = "1"
	}
	if t := templateOf(st, d); t != nil {
		db["/qubes-base-template"] = t.Name
	}
	for k, v := range d.Features {
		if n, ok := strings.CutPrefix(k, "service."); ok {
			// services.py: str(int(bool(value))); a disabled service is ''.
			db["/qubes-service/"+n] = map[bool]string{true: "1", false: "0"}[v != ""]
		}
	}
	return db
}

// qubesdbMatch lists the entries a multiread or list of path covers, sorted
// as the daemon keeps them: a path ending in "/" covers everything below
// it, any other path only itself.
func qubesdbMatch(db map[string]string, path string) []string {
	var out []string
	for k := range db {
		if k == path || (strings.HasSuffix(path, "/") && strings.HasPrefix(k, path)) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// qubesdbCmd is qubesdb-read, qubesdb-multiread and qubesdb-list
// (qubes-core-qubesdb client/qubesdb-cmd.c): the command comes from the
// name after its first '-' or from -c. The database read is the calling
// VM's, found from the process's ancestry like every supervisor request,
// never from its environment. -d names another domain's database, which
// only dom0 can reach; in a VM it fails to connect, as the real client does.
func qubesdbCmd(c *Call) int {
	const usage = `Usage: %s [-frq] [-c <command>] [-d <destination domain>] 
       [command arguments]
  -f - print full path (affects reading commands)
  -r - print raw value (affects reading commands)
  -q - quiet - do not print error
  -c <command> - specify command
  -d <domain> - specify destination domain, available only in dom0
  -w - wait for any value (possibly empty)

Available commands:
  read path [path...] - read value(s)
  write path value [path value...] - write value(s)
  rm path [path...] - remove value(s)
  multiread path [path...] - read all entries matching given path
  list path - list paths mathing given argument
  watch [-n N] path [path...] - watch given path(s) for modifications
    if -n given you can specify how many events should be received before terminating (default: 1, negative: infinite)
`
	cmd := ""
	if _, after, ok := strings.Cut(c.Name, "-"); ok {
		cmd = after
	}
	var (
		dest                     string
		hasDest                  bool
		fullPath, raw, quiet, wt bool
		paths                    []string
	)
	// getopt "hc:d:n:frqw" with GNU argument permutation.
	args := c.Args
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			paths = append(paths, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			paths = append(paths, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			opt := a[j]
			switch opt {
			case 'c', 'd', 'n':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						fmt.Fprintf(c.Stdio.Err, "%s: option requires an argument -- '%c'\n", c.Name, opt)
						fmt.Fprintf(c.Stdio.Err, usage, c.Name)
						return 1
					}
					i++
					val = args[i]
				}
				switch opt {
				case 'c':
					cmd = val
				case 'd':
					dest, hasDest = val, true
				case 'n':
					if cmd != "watch" {
						fmt.Fprintln(c.Stdio.Err, "-n valid only for watch command")
						return 1
					}
				}
				j = len(a)
			case 'f':
				fullPath = true
			case 'r':
				raw = true
			case 'q':
				quiet = true
			case 'w':
				wt = true
			case 'h':
				fmt.Fprintf(c.Stdio.Err, usage, c.Name)
				return 0
			default:
				fmt.Fprintf(c.Stdio.Err, "%s: invalid option -- '%c'\n", c.Name, opt)
				fmt.Fprintf(c.Stdio.Err, usage, c.Name)
				return 1
			}
		}
	}
	switch cmd {
	case "read", "multiread", "list", "write", "rm", "watch":
	default:
		cmd = ""
	}
	if len(args) == 0 || cmd == "" {
		fmt.Fprintf(c.Stdio.Err, usage, c.Name)
		return 0
	}
	errf := func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(c.Stdio.Err, format, a...)
		}
	}
	self, _, err := c.Machine.domainOfPid(os.Getpid(), 0, "")
	if err != nil || self == Dom0 || hasDest {
		// dom0 runs no QubesDB of its own in the simulator, and a VM
		// cannot reach another domain's daemon.
		name := "local"
		if hasDest {
			name = dest
		}
		errf("Failed connect to %s daemon\n", name)
		return 1
	}
	load := func() (map[string]string, error) {
		st, err := c.Machine.Load()
		if err != nil {
			return nil, err
		}
		d := st.Domain(self)
		if d == nil {
			return nil, fmt.Errorf("%w: %q", ErrNoDomain, self)
		}
		return qubesDB(st, d), nil
	}
	db, err := load()
	if err != nil {
		errf("Failed connect to local daemon\n")
		return 1
	}
	value := func(v string) string {
		if raw {
			return v
		}
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] >= 0x20 && v[i] < 0x80 {
				b.WriteByte(v[i])
			} else {
				fmt.Fprintf(&b, "\\x%02x", v[i])
			}
		}
		return b.String()
	}
	out := c.Stdio.Out
	failed := 0
	switch cmd {
	case "read":
		for _, p := range paths {
			v, ok := db[p]
			for wt && !ok {
				// -w: block until some value appears, as a QubesDB watch does.
				select {
				case <-c.Ctx.Done():
					return 1
				case <-time.After(20 * time.Millisecond):
				}
				if db, err = load(); err != nil {
					errf("Failed connect to local daemon\n")
					return 1
				}
				v, ok = db[p]
			}
			if !ok {
				errf("Failed to read %s\n", p)
				failed = 1
				continue
			}
			if fullPath {
				fmt.Fprintf(out, "%s = ", p)
			}
			fmt.Fprintf(out, "%s\n", value(v))
		}
	case "multiread":
		for _, p := range paths {
			base := len(p)
			if fullPath {
				base = 0
			}
			for _, k := range qubesdbMatch(db, p) {
				fmt.Fprintf(out, "%s = %s\n", k[base:], value(db[k]))
			}
		}
	case "list":
		if len(paths) != 1 {
			fmt.Fprintln(c.Stdio.Err, "LIST command accept only one path")
			return 1
		}
		base := len(paths[0])
		if fullPath {
			base = 0
		}
		for _, k := range qubesdbMatch(db, paths[0]) {
			io.WriteString(out, k[base:]+"\n")
		}
	default:
		// Writes and watches change or follow the VM's database, which the
		// simulator derives from the qubes state: not simulated.
		errf("%s: command %s is not simulated\n", c.Name, cmd)
		return 1
	}
	return failed
}
