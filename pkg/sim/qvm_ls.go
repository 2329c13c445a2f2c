package sim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const qvmLsUsage = `usage: qvm-ls [--verbose] [--quiet] [--help] [--version] [--all]
              [--exclude EXCLUDE] [--format FORMAT] [--fields FIELD,...]
              [--tree] [--raw-data] [--raw-list] [--disk] [--network]
              [--kernel] [--help-formats] [--help-columns]
              [--class CLASS [CLASS ...]] [--label LABEL [LABEL ...]]
              [--tags TAG [TAG ...]] [--exclude-tags TAG [TAG ...]]
              [--running] [--paused] [--halted]
              [--template-source TEMPLATE [TEMPLATE ...]]
              [--netvm-is NETVM [NETVM ...]] [--internal <y|n>]
              [--servicevm <y|n>] [--pending-update]
              [--features FEATURE=VALUE [FEATURE=VALUE ...]]
              [--prefs PREFERENCE=VALUE [PREFERENCE=VALUE ...]]
              [--sort COLUMN] [--reverse] [--ignore-case] [--spinner]
              [--no-spinner]
              [VMNAME ...]
`

// lsFormats are qvm-ls' preset formats (qubesadmin/tools/qvm_ls.py).
var lsFormats = map[string][]string{
	"simple":  {"name", "state", "class", "label", "template", "netvm"},
	"network": {"name", "state", "netvm", "ip", "ipback", "gateway"},
	"kernel":  {"name", "state", "class", "template", "kernel", "kernelopts"},
	"full":    {"name", "state", "class", "label", "qid", "xid", "uuid"},
	"prefs":   {"name", "label", "template", "netvm", "vcpus", "initialmem", "maxmem", "virt_mode"},
	"disk":    {"name", "state", "disk", "priv-curr", "priv-max", "priv-used", "root-curr", "root-max", "root-used"},
}

var lsFormatNames = []string{"simple", "network", "kernel", "full", "prefs", "disk"}

// lsSortNumeric are the columns qvm-ls sorts numerically.
var lsSortNumeric = []string{"MEMORY", "DISK", "PRIV-CURR", "PRIV-MAX", "ROOT-CURR", "XID",
	"ROOT-MAX", "MAXMEM", "QREXEC-TIMEOUT", "SHUTDOWN-TIMEOUT", "VCPUS", "PRIV-USED", "ROOT-USED"}

// lsColumn computes one cell; "" is shown as "-".
type lsColumn struct {
	head string
	cell func(st *State, d *Domain) string
}

// lsColumnFor maps a --fields entry to a column: the computed columns of
// qvm_ls.py, otherwise the VM property of that name. Columns that need a
// hypervisor or storage (memory use, disk, xid) have no value in the
// simulator and show "-", as qvm-ls does when a value is unavailable.
func lsColumnFor(name string) lsColumn {
	head := strings.ToUpper(strings.ReplaceAll(name, "_", "-"))
	switch head {
	case "STATE":
		return lsColumn{head, func(_ *State, d *Domain) string { return powerState(d) }}
	case "CLASS":
		return lsColumn{head, func(_ *State, d *Domain) string { return d.Class }}
	case "FLAGS":
		return lsColumn{head, lsFlags}
	case "GATEWAY", "MEMORY", "DISK", "PRIV-CURR", "PRIV-MAX", "PRIV-POOL", "PRIV-USED",
		"ROOT-CURR", "ROOT-MAX", "ROOT-POOL", "ROOT-USED", "XID", "IP", "IPBACK", "INITIALMEM":
		return lsColumn{head, func(*State, *Domain) string { return "" }}
	}
	prop := strings.ToLower(strings.ReplaceAll(name, "-", "_"))
	return lsColumn{head, func(st *State, d *Domain) string {
		v, _, err := d.Prop(st, prop)
		if err != nil {
			return ""
		}
		return v
	}}
}

func powerState(d *Domain) string {
	if d.Power == "" {
		return Halted
	}
	return d.Power
}

// lsFlags is the FLAGS column: type, power state, then U N R i D A.
func lsFlags(st *State, d *Domain) string {
	types := map[string]string{AdminVM: "0", TemplateVM: "t", AppVM: "a", StandaloneVM: "s", DispVM: "d"}
	t := types[d.Class]
	if t == "" {
		t = "-"
	}
	if vm, _, _ := d.Prop(st, "virt_mode"); vm == "hvm" && t != "0" && t != "-" {
		t = strings.ToUpper(t)
	}
	power := "-"
	switch s := strings.ToLower(powerState(d)); s {
	case "running", "transient", "paused", "suspended", "halting", "dying", "crashed":
		power = s[:1]
	case "unknown":
		power = "?"
	}
	flag := func(prop, letter string) string {
		if ok, _ := d.PropBool(st, prop); ok {
			return letter
		}
		return "-"
	}
	internal := "-"
	if d.Features["internal"] != "" {
		// qvm-ls reads getattr(vm, 'internal'): a property the simulator
		// does not model, so like a qube without it this is always "-".
		internal = "-"
	}
	return t + power + flag("updateable", "U") + flag("provides_network", "N") +
		flag("installed_by_rpm", "R") + internal + flag("debug", "D") + flag("autostart", "A")
}

// lsSpinner is QubesSpinnerEnterpriseEdition on a stream that is not a TTY:
// it writes the prompt, a dot per update, and a newline at the end.
type lsSpinner struct{ w io.Writer }

func newLsSpinner(f *os.File, enabled bool) *lsSpinner {
	if !enabled || f == nil {
		return &lsSpinner{}
	}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		// On a terminal the spinner erases itself; leave the TTY alone.
		return &lsSpinner{}
	}
	return &lsSpinner{w: f}
}

func (s *lsSpinner) show(prompt string) {
	if s.w != nil {
		fmt.Fprintf(s.w, "%s .", prompt)
	}
}

func (s *lsSpinner) update() {
	if s.w != nil {
		io.WriteString(s.w, ".")
	}
}

func (s *lsSpinner) hide() {
	if s.w != nil {
		io.WriteString(s.w, "\n")
	}
}

func qvmLs(c *Call) int {
	p := newQAParser(c, qvmLsUsage)
	var all, tree, rawData, rawList, helpFormats, helpColumns bool
	var running, paused, halted, pendingUpdate, reverse, ignoreCase bool
	spinner := true
	var exclude, klass, labels, tags, excludeTags, templateSource, netvmIs, features, prefs []string
	format, fields, sortCol, internal, servicevm := "simple", "", "NAME", "both", "both"
	formatGiven := ""
	setFormat := func(opt, f string) error {
		if fields != "" || formatGiven != "" && formatGiven != opt {
			other := formatGiven
			if fields != "" {
				other = "--fields/-O"
			}
			return usageErrorf("argument %s: not allowed with argument %s", opt, other)
		}
		formatGiven, format = opt, f
		return nil
	}
	p.boolFlag(&all, "--all")
	p.listFlag(&exclude, "--exclude")
	p.add(1, func(v []string) error {
		if _, ok := lsFormats[v[0]]; !ok {
			return usageErrorf("argument --format/-o: invalid choice: %s (choose from %s)", pyRepr(v[0]), quotedList(lsFormatNames))
		}
		return setFormat("--format/-o", v[0])
	}, "--format", "-o")
	p.add(1, func(v []string) error {
		if formatGiven != "" {
			return usageErrorf("argument --fields/-O: not allowed with argument %s", formatGiven)
		}
		fields = v[0]
		return nil
	}, "--fields", "-O")
	p.boolFlag(&tree, "--tree", "-t")
	p.boolFlag(&rawData, "--raw-data")
	p.boolFlag(&rawList, "--raw-list")
	p.add(0, func([]string) error { return setFormat("--disk/-d", "disk") }, "--disk", "-d")
	p.add(0, func([]string) error { return setFormat("--network/-n", "network") }, "--network", "-n")
	p.add(0, func([]string) error { return setFormat("--kernel/-k", "kernel") }, "--kernel", "-k")
	p.boolFlag(&helpFormats, "--help-formats")
	p.boolFlag(&helpColumns, "--help-columns")
	p.multiFlag(&klass, "--class")
	p.multiFlag(&labels, "--label")
	p.multiFlag(&tags, "--tags")
	p.multiFlag(&excludeTags, "--exclude-tags")
	p.boolFlag(&running, "--running")
	p.boolFlag(&paused, "--paused")
	p.boolFlag(&halted, "--halted")
	p.multiFlag(&templateSource, "--template-source")
	p.multiFlag(&netvmIs, "--netvm-is")
	yn := func(opt string, dst *string) func([]string) error {
		return func(v []string) error {
			if !contains([]string{"y", "yes", "n", "no"}, v[0]) {
				return usageErrorf("argument %s: invalid choice: %s (choose from 'y', 'yes', 'n', 'no')", opt, pyRepr(v[0]))
			}
			*dst = v[0]
			return nil
		}
	}
	p.add(1, yn("--internal", &internal), "--internal")
	p.add(1, yn("--servicevm", &servicevm), "--servicevm")
	p.boolFlag(&pendingUpdate, "--pending-update")
	p.multiFlag(&features, "--features")
	p.multiFlag(&prefs, "--prefs")
	p.strFlag(&sortCol, "--sort")
	p.boolFlag(&reverse, "--reverse")
	p.boolFlag(&ignoreCase, "--ignore-case")
	p.add(0, func([]string) error { spinner = true; return nil }, "--spinner")
	p.add(0, func([]string) error { spinner = false; return nil }, "--no-spinner")
	pos, unknown, err := p.parse(c.Args)
	if err == nil && all && len(pos) > 0 {
		err = usageErrorf("argument VMNAME: not allowed with argument --all")
	}
	if err == nil {
		err = checkPositionals(pos, unknown, nil, -1)
	}
	if err == nil && !all && len(exclude) > 0 {
		err = usageErrorf("--exclude can only be used with --all")
	}
	if err != nil {
		return p.fail(err)
	}
	out := bufio.NewWriter(c.Stdio.Out)
	defer out.Flush()
	if helpFormats {
		fmt.Fprintln(out, "Available formats:")
		for _, f := range []string{"disk", "full", "kernel", "network", "prefs", "simple"} {
			fmt.Fprintf(out, "  %-7s  %s\n", f, strings.ToUpper(strings.Join(lsFormats[f], ",")))
		}
		fmt.Fprintln(out)
		return 0
	}
	if rawList {
		rawData, fields = true, "name"
	}
	var colNames []string
	if fields != "" {
		for _, f := range strings.Split(fields, ",") {
			colNames = append(colNames, strings.TrimSpace(f))
		}
	} else {
		colNames = lsFormats[format]
	}
	cols := make([]lsColumn, 0, len(colNames))
	for _, n := range colNames {
		cols = append(cols, lsColumnFor(n))
	}
	for _, kv := range append(append([]string{}, features...), prefs...) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			opt := "--features"
			if contains(prefs, kv) {
				opt = "--prefs"
			}
			return p.fail(usageErrorf("Invalid argument: %s %s", opt, kv))
		}
	}
	spin := newLsSpinner(c.Stdio.Err, spinner && !rawData)

	err = c.Machine.View(func(st *State) error {
		var domains []*Domain
		switch {
		case all:
			for _, n := range st.Names() {
				if !contains(exclude, n) {
					domains = append(domains, st.Domains[n])
				}
			}
		case len(pos) > 0:
			ds, err := resolveDomains(st, pos)
			if err != nil {
				return err
			}
			domains = ds
		default:
			for _, n := range st.Names() {
				domains = append(domains, st.Domains[n])
			}
		}
		keep := func(pred func(d *Domain) bool) {
			var out []*Domain
			for _, d := range domains {
				if pred(d) {
					out = append(out, d)
				}
			}
			domains = out
		}
		prop := func(d *Domain, name string) string { v, _, _ := d.Prop(st, name); return v }
		if len(klass) > 0 {
			keep(func(d *Domain) bool { return contains(klass, d.Class) })
		}
		if len(labels) > 0 {
			spin.show("Filtering based on labels...")
			keep(func(d *Domain) bool { spin.update(); return contains(labels, prop(d, "label")) })
			spin.hide()
		}
		if len(tags) > 0 {
			keep(func(d *Domain) bool {
				for _, t := range tags {
					if d.HasTag(t) {
						return true
					}
				}
				return false
			})
		}
		if len(excludeTags) > 0 {
			keep(func(d *Domain) bool {
				for _, t := range excludeTags {
					if d.HasTag(t) {
						return false
					}
				}
				return true
			})
		}
		if len(templateSource) > 0 {
			spin.show("Filtering results to qubes based on their templates...")
			keep(func(d *Domain) bool { spin.update(); return contains(templateSource, prop(d, "template")) })
			spin.hide()
		}
		if len(netvmIs) > 0 {
			spin.show("Filtering results to qubes based on their netvm...")
			keep(func(d *Domain) bool { spin.update(); return contains(netvmIs, prop(d, "netvm")) })
			spin.hide()
		}
		truthy := func(v string, ok bool) bool { return ok && (v == "1" || v == "true" || v == "True") }
		switch internal {
		case "y", "yes":
			keep(func(d *Domain) bool { v, ok := d.Features["internal"]; return truthy(v, ok) })
		case "n", "no":
			keep(func(d *Domain) bool { v, ok := d.Features["internal"]; return !truthy(v, ok) })
		}
		switch servicevm {
		case "y", "yes":
			keep(func(d *Domain) bool { v, ok := d.Features["servicevm"]; return truthy(v, ok) })
		case "n", "no":
			keep(func(d *Domain) bool { v, ok := d.Features["servicevm"]; return !truthy(v, ok) })
		}
		if pendingUpdate {
			keep(func(d *Domain) bool { return d.Features["updates-available"] != "" })
		}
		for _, kv := range features {
			k, v, _ := strings.Cut(kv, "=")
			keep(func(d *Domain) bool {
				got, ok := d.Features[k]
				switch v {
				case "":
					return !ok // omitted VALUE means unset
				case "''", `""`:
					return ok && got == ""
				}
				return ok && got == v
			})
		}
		for _, kv := range prefs {
			k, v, _ := strings.Cut(kv, "=")
			keep(func(d *Domain) bool {
				got, _, err := d.Prop(st, k)
				if err != nil {
					return v == "None" // str(getattr(d, key, None))
				}
				if got == "" && propKindOf(d.Class, k) == kindVM {
					got = "None"
				}
				switch v {
				case "":
					return false // None never equals a str()
				case "''", `""`:
					return got == ""
				}
				return got == v
			})
		}
		if running || paused || halted {
			keep(func(d *Domain) bool {
				s := strings.ToLower(powerState(d))
				return running && s == "running" || paused && s == "paused" || halted && s == "halted"
			})
		}
		sort.Slice(domains, func(i, j int) bool { return domains[i].Name < domains[j].Name })

		row := func(d *Domain) []string {
			r := make([]string, len(cols))
			for i, col := range cols {
				v := col.cell(st, d)
				if v == "" {
					v = "-"
				}
				r[i] = v
				spin.update()
			}
			return r
		}
		if rawData {
			for _, d := range domains {
				fmt.Fprintln(out, strings.Join(row(d), "|"))
			}
			return nil
		}
		spin.show("please wait...")
		heads := make([]string, len(cols))
		for i, col := range cols {
			heads[i] = col.head
		}
		spin.update()
		var rows [][]string
		for _, d := range domains {
			rows = append(rows, row(d))
		}
		sortKey := strings.ToUpper(sortCol)
		if idx := indexOf(heads, sortKey); idx >= 0 {
			numeric := contains(lsSortNumeric, sortKey)
			sort.SliceStable(rows, func(i, j int) bool {
				a, b := rows[i][idx], rows[j][idx]
				if reverse {
					a, b = b, a
				}
				if numeric {
					return lsNumeric(a) < lsNumeric(b)
				}
				if ignoreCase {
					a, b = strings.ToUpper(a), strings.ToUpper(b)
				}
				return a < b
			})
		}
		spin.hide()
		printTable(out, append([][]string{heads}, rows...))
		return nil
	})
	if err != nil {
		return p.fail(err)
	}
	return 0
}

func lsNumeric(s string) int {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil {
		return 0
	}
	return n
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func quotedList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = pyRepr(s)
	}
	return strings.Join(q, ", ")
}
