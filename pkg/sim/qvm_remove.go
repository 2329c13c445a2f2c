package sim

import (
	"bufio"
	"fmt"
	"strings"
)

const qvmRemoveUsage = `usage: qvm-remove [--verbose] [--quiet] [--help] [--version] [--all]
                  [--exclude EXCLUDE] [--force]
                  [VMNAME ...]
`

// Dependency order of qubesadmin.utils.vm_dependencies, used for the
// "It is in use as:" list.
var (
	depGlobalProps = []string{"default_dispvm", "default_netvm", "default_guivm", "default_audiovm",
		"default_template", "clockvm", "updatevm", "management_dispvm"}
	depVMProps = []string{"template", "netvm", "guivm", "audiovm", "default_dispvm", "management_dispvm"}
)

// qvmRemove is qvm-remove: it asks for confirmation unless -f is given,
// refuses a qube that is not halted or that something refers to (a template
// with AppVMs, a netvm in use, a global default), and deletes the domain's
// files. Qubes removes qubes one by one: a refusal leaves the earlier ones
// removed.
func qvmRemove(c *Call) int {
	p := newQAParser(c, qvmRemoveUsage)
	var all, force bool
	var exclude []string
	p.boolFlag(&all, "--all")
	p.listFlag(&exclude, "--exclude")
	p.boolFlag(&force, "--force", "-f")
	pos, unknown, err := p.parse(c.Args)
	if err == nil {
		err = vmNameGroup(all, pos, unknown, exclude)
	}
	if err != nil {
		return p.fail(err)
	}
	var names []string
	err = c.Machine.View(func(st *State) error {
		ds := allDomains(st, exclude)
		if !all {
			if ds, err = resolveDomains(st, pos); err != nil {
				return err
			}
		}
		for _, d := range ds {
			names = append(names, d.Name)
		}
		return nil
	})
	if err != nil {
		return p.fail(err)
	}

	var in *bufio.Reader
	if c.Stdio.In != nil {
		in = bufio.NewReader(c.Stdio.In)
	}
	// input(): the prompt goes to stdout; at end of input Python raises
	// EOFError (exit 1), which the simulator reports as a cancel.
	input := func(prompt string) string {
		fmt.Fprint(c.Stdio.Out, prompt)
		if in == nil {
			return ""
		}
		line, _ := in.ReadString('\n')
		return strings.TrimRight(line, "\r\n")
	}
	if all && !force && len(exclude) == 0 {
		fmt.Fprintln(c.Stdio.Err, "WARNING!!! Removing all domains may leave your system in an unrecoverable state!")
		if input("Are you certain? [N/IKNOWWHATIAMDOING]") != "IKNOWWHATIAMDOING" {
			fmt.Fprintln(c.Stdio.Err, "Remove cancelled.")
			return 1
		}
	}
	if !force {
		fmt.Fprintln(c.Stdio.Err, "This will completely remove the selected VM(s)...")
		for _, n := range names {
			fmt.Fprintln(c.Stdio.Out, " ", n)
		}
		if strings.ToUpper(input("Are you sure? [y/N] ")) != "Y" {
			fmt.Fprintln(c.Stdio.Err, "Remove cancelled.")
			return 1
		}
	}

	var callErr error
	err = c.Machine.Update(func(st *State) error {
		for _, n := range names {
			if callErr = c.Machine.removeDomain(st, n, c); callErr != nil {
				return nil // keep the removals done so far
			}
		}
		return nil
	})
	if err == nil {
		err = callErr
	}
	if err != nil {
		return p.fail(err)
	}
	return 0
}

// removeDomain is admin.vm.Remove for one qube.
func (m *Machine) removeDomain(st *State, name string, c *Call) error {
	d := st.Domain(name)
	if d == nil {
		return propErrorf("No such domain: %s", pyRepr(name))
	}
	if d.Class == AdminVM {
		return propErrorf("%s cannot be removed", pyRepr(name))
	}
	if d.Running() {
		return propErrorf("Domain is not powered off: %s", pyRepr(name))
	}
	if rpm, _ := d.PropBool(st, "installed_by_rpm"); rpm {
		return propErrorf("VM installed by package manager: %s", name)
	}
	globals, qubes := propDeps(st, name)
	if len(globals) > 0 || len(qubes) > 0 {
		fmt.Fprintf(c.Stdio.Err, "VM %s cannot be removed. It is in use as:\n", name)
		for _, g := range depGlobalProps {
			if contains(globals, g) {
				fmt.Fprintf(c.Stdio.Err, " - global property %s\n", g)
			}
		}
		for _, q := range qubes {
			if contains(depVMProps, q[1]) {
				fmt.Fprintf(c.Stdio.Err, " - %s for %s\n", q[1], q[0])
			}
		}
		return propErrorf("Domain is in use: %s;  see 'journalctl -u qubesd -e' in dom0 for details", pyRepr(name))
	}
	delete(st.Domains, name)
	st.NextQID = unusedQID(st)
	// qubesd logs and ignores failures to remove the files; so does the
	// simulator, on stderr.
	if auto, _ := d.PropBool(st, "autostart"); auto {
		if err := m.setAutostartLink(name, false); err != nil {
			fmt.Fprintf(c.Stdio.Err, "%s: removing autostart of %s: %v\n", c.Name, name, err)
		}
	}
	if err := m.RemoveDomainFS(name); err != nil {
		fmt.Fprintf(c.Stdio.Err, "%s: %v\n", c.Name, err)
	}
	return nil
}
