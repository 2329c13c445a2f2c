package sim

import (
	"strings"
)

const qvmCheckUsage = `usage: qvm-check [--verbose] [--quiet] [--help] [--version] [--all]
                 [--exclude EXCLUDE] [--running] [--paused] [--template]
                 [--networked]
                 [VMNAME ...]
`

// qvmCheck is qvm-check (qubes.md §3.2): exit 0 when every named qube exists
// and matches, 1 when none matches or any does not exist, 3 when some match.
// Running means any power state but Halted, so a paused qube is running.
func qvmCheck(c *Call) int {
	p := newQAParser(c, qvmCheckUsage)
	var all, running, paused, template, networked bool
	var exclude []string
	p.boolFlag(&all, "--all")
	p.listFlag(&exclude, "--exclude")
	p.boolFlag(&running, "--running")
	p.boolFlag(&paused, "--paused")
	p.boolFlag(&template, "--template")
	p.boolFlag(&networked, "--networked")
	pos, unknown, err := p.parse(c.Args)
	if err == nil {
		err = vmNameGroup(all, pos, unknown, exclude)
	}
	if err != nil {
		return p.fail(err)
	}

	type filter struct {
		status string
		check  func(st *State, d *Domain) bool
	}
	var filters []filter
	if running {
		filters = append(filters, filter{"running", func(_ *State, d *Domain) bool { return d.Running() }})
	}
	if paused {
		filters = append(filters, filter{"paused", func(_ *State, d *Domain) bool { return d.Power == Paused }})
	}
	if template {
		filters = append(filters, filter{"template", func(_ *State, d *Domain) bool { return d.Class == TemplateVM }})
	}
	if networked {
		filters = append(filters, filter{"networked", func(st *State, d *Domain) bool { return isNetworked(st, d) }})
	}

	code := 0
	err = c.Machine.View(func(st *State) error {
		var domains []*Domain
		var invalid []string
		if all {
			domains = allDomains(st, exclude)
		} else {
			seen := map[string]bool{}
			for _, n := range pos {
				if d := st.Domain(n); d != nil {
					if !seen[n] {
						domains = append(domains, d)
					}
					seen[n] = true
				} else if !contains(invalid, n) {
					invalid = append(invalid, n)
				}
			}
		}
		if len(filters) > 0 {
			var status []string
			matched := domains
			for _, f := range filters {
				status = append(status, f.status)
				var keep []*Domain
				for _, d := range matched {
					if f.check(st, d) {
						keep = append(keep, d)
					}
				}
				matched = keep
			}
			if len(matched) != len(domains) {
				if len(matched) == 0 {
					code = 1
				} else {
					code = 3
				}
			}
			printCheck(p, matched, status)
		} else if len(domains) == 0 {
			code = 1
		} else {
			printCheck(p, domains, []string{"exists"})
		}
		// The warning goes through the logger whatever -q says; with -q
		// Python's last-resort handler still prints it (bare).
		for _, n := range invalid {
			p.logf("qvm-check", logWarning, "%s: non-existent!", n)
		}
		if len(invalid) > 0 {
			code = 1
		}
		return nil
	})
	if err != nil {
		return p.fail(err)
	}
	return code
}

func printCheck(p *qaParser, domains []*Domain, status []string) {
	s := strings.Join(status, ", ")
	if len(domains) == 0 {
		p.logf("qvm-check", logInfo, "None of qubes: %s", s)
		return
	}
	for _, n := range domainNames(domains) {
		p.logf("qvm-check", logInfo, "%s: %s", n, s)
	}
}

// vmNameGroup checks VmNameGroup's rules: --all or at least one VMNAME,
// --exclude only with --all.
func vmNameGroup(all bool, pos, unknown, exclude []string) error {
	if all && len(pos) > 0 {
		return usageErrorf("argument VMNAME: not allowed with argument --all")
	}
	if !all && len(pos) == 0 {
		return usageErrorf("one of the arguments --all VMNAME is required")
	}
	if len(unknown) > 0 {
		return usageErrorf("unrecognized arguments: %s", strings.Join(unknown, " "))
	}
	if !all && len(exclude) > 0 {
		return usageErrorf("--exclude can only be used with --all")
	}
	return nil
}

// isNetworked is QubesVM.is_networked: provides network or has a netvm.
func isNetworked(st *State, d *Domain) bool {
	if d.Class == AdminVM {
		return false
	}
	if pn, _ := d.PropBool(st, "provides_network"); pn {
		return true
	}
	nv, _, _ := d.Prop(st, "netvm")
	return nv != ""
}
