package sim

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const qvmPrefsUsage = `usage: qvm-prefs [--verbose] [--quiet] [--help] [--version]
                 [--help-properties] [--hide-default] [--get] [--set]
                 [--default]
                 VMNAME [PROPERTY] [VALUE]
`

const qubesPrefsUsage = `usage: qubes-prefs [--verbose] [--quiet] [--help] [--version]
                   [--help-properties] [--hide-default] [--get] [--set]
                   [--default]
                   [PROPERTY] [VALUE]
`

// noneProps are the properties for which qvm-prefs turns "none" (any case)
// into "" (qubesadmin/tools/qvm_prefs.py).
var noneProps = []string{"default_dispvm", "netvm", "template", "guivm", "audiovm"}

// prefsArgs is what qvm-prefs and qubes-prefs share.
type prefsArgs struct {
	p                          *qaParser
	helpProps, hideDefault, rm bool
	prop, value                *string
}

func parsePrefs(c *Call, usage string, nVM int) (*prefsArgs, []string, int, bool) {
	a := &prefsArgs{p: newQAParser(c, usage)}
	var ignored bool
	a.p.boolFlag(&a.helpProps, "--help-properties")
	a.p.boolFlag(&a.hideDefault, "--hide-default")
	a.p.boolFlag(&ignored, "--get", "-g")
	a.p.boolFlag(&ignored, "--set", "-s")
	a.p.boolFlag(&a.rm, "--default", "-D")
	pos, unknown, err := a.p.parse(c.Args)
	if err == nil {
		req := []string{"VMNAME"}[:nVM]
		err = checkPositionals(pos, unknown, req, nVM+2)
	}
	if err != nil {
		return nil, nil, a.p.fail(err), false
	}
	vms := pos[:nVM]
	rest := pos[nVM:]
	if len(rest) > 0 {
		a.prop = &rest[0]
	}
	if len(rest) > 1 {
		a.value = &rest[1]
	}
	return a, vms, 0, true
}

func qvmPrefs(c *Call) int {
	a, vms, code, ok := parsePrefs(c, qvmPrefsUsage, 1)
	if !ok {
		return code
	}
	p := a.p
	out := bufio.NewWriter(c.Stdio.Out)
	defer out.Flush()

	if a.prop == nil || a.helpProps || a.value == nil && !a.rm {
		// Read-only paths.
		err := c.Machine.View(func(st *State) error {
			ds, err := resolveDomains(st, vms)
			if err != nil {
				return err
			}
			d := ds[len(ds)-1]
			names := d.PropNames()
			switch {
			case a.helpProps:
				printPropNames(out, names)
				return nil
			case a.prop == nil:
				width := 0
				for _, n := range names {
					width = max(width, len(n))
				}
				for _, n := range names {
					v, def, err := d.Prop(st, n)
					if err != nil {
						return err
					}
					if def && a.hideDefault {
						continue
					}
					marker := "-"
					if def {
						marker = "D"
					}
					fmt.Fprintf(out, "%-*s  %s  %s\n", width, n, marker, listValue(propKindOf(d.Class, n), v))
				}
				return nil
			}
			name := strings.ReplaceAll(*a.prop, "-", "_")
			v, def, err := d.Prop(st, name)
			if err != nil {
				return err
			}
			if a.hideDefault && def {
				return nil
			}
			if k := propKindOf(d.Class, name); v == "" && (k == kindVM || k == kindLabel) {
				return nil // qubesadmin gets None and prints nothing
			}
			fmt.Fprintln(out, v)
			return nil
		})
		if err != nil {
			return p.fail(err)
		}
		return 0
	}

	name := strings.ReplaceAll(*a.prop, "-", "_")
	err := c.Machine.Update(func(st *State) error {
		ds, err := resolveDomains(st, vms)
		if err != nil {
			return err
		}
		d := ds[len(ds)-1]
		wasAuto, _ := d.PropBool(st, "autostart")
		if a.value != nil {
			v := *a.value
			if strings.ToLower(v) == "none" && contains(noneProps, name) {
				v = ""
			}
			err = d.SetProp(st, name, v)
		} else {
			err = d.ResetProp(st, name)
		}
		if err != nil {
			return err
		}
		if name == "autostart" {
			isAuto, _ := d.PropBool(st, "autostart")
			if isAuto != wasAuto || isAuto {
				return c.Machine.setAutostartLink(d.Name, isAuto)
			}
		}
		return nil
	})
	if err != nil {
		return p.fail(err)
	}
	return 0
}

// listValue is how qvm-prefs' listing prints a value: Python's str() of what
// qubesadmin parsed, so a missing VM or label is "None".
func listValue(k propKind, v string) string {
	if v == "" && (k == kindVM || k == kindLabel) {
		return "None"
	}
	return v
}

func printPropNames(out *bufio.Writer, names []string) {
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(out, "  %-*s\n", width, n)
	}
}

// autostartUnit is qubes-core-admin linux/systemd/qubes-vm@.service, which
// CreateMachine installs in dom0.
const autostartUnit = `[Unit]
Description=Start Qubes VM %i
After=qubesd.service qubes-meminfo-writer-dom0.service
Before=qubes-preload-dispvm.service
ConditionKernelCommandLine=!qubes.skip_autostart

[Service]
Type=oneshot
ExecStart=/usr/bin/qvm-start --skip-if-running -- %i
Group=qubes
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
`

// setAutostartLink mirrors qubesvm.py's autostart handlers: setting it runs
// `ln -sf /usr/lib/systemd/system/qubes-vm@.service
// /etc/systemd/system/multi-user.target.wants/qubes-vm@NAME.service` in dom0,
// clearing it `systemctl disable qubes-vm@NAME.service` (qubes.md §3.4).
func (m *Machine) setAutostartLink(name string, on bool) error {
	link := m.Path(Dom0, "/etc/systemd/system/multi-user.target.wants/qubes-vm@"+name+".service")
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("Failed to set autostart for VM in systemd: %w", err)
	}
	if !on {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return fmt.Errorf("Failed to set autostart for VM in systemd: %w", err)
	}
	if err := os.Symlink("/usr/lib/systemd/system/qubes-vm@.service", link); err != nil {
		return fmt.Errorf("Failed to set autostart for VM in systemd: %w", err)
	}
	return nil
}

// qubesPrefs is qubes-prefs: the same tool over the global properties.
func qubesPrefs(c *Call) int {
	a, _, code, ok := parsePrefs(c, qubesPrefsUsage, 0)
	if !ok {
		return code
	}
	p := a.p
	out := bufio.NewWriter(c.Stdio.Out)
	defer out.Flush()
	if a.prop == nil || a.helpProps || a.value == nil && !a.rm {
		err := c.Machine.View(func(st *State) error {
			names := GlobalPropNames()
			switch {
			case a.helpProps:
				printPropNames(out, names)
				return nil
			case a.prop == nil:
				width := 0
				for _, n := range names {
					width = max(width, len(n))
				}
				for _, n := range names {
					v, def, err := st.GlobalProp(n)
					if err != nil {
						return err
					}
					if def && a.hideDefault {
						continue
					}
					marker := "-"
					if def {
						marker = "D"
					}
					fmt.Fprintf(out, "%-*s  %s  %s\n", width, n, marker, listValue(findProp(globalProps(), "", n).kind, v))
				}
				return nil
			}
			name := strings.ReplaceAll(*a.prop, "-", "_")
			v, def, err := st.GlobalProp(name)
			if err != nil {
				return err
			}
			if a.hideDefault && def {
				return nil
			}
			if v == "" && findProp(globalProps(), "", name).kind == kindVM {
				return nil
			}
			fmt.Fprintln(out, v)
			return nil
		})
		if err != nil {
			return p.fail(err)
		}
		return 0
	}
	name := strings.ReplaceAll(*a.prop, "-", "_")
	err := c.Machine.Update(func(st *State) error {
		if a.value != nil {
			v := *a.value
			// The same list as qvm-prefs: only default_dispvm matches here, so
			// "qubes-prefs default_netvm none" fails in qubesd as for real.
			if strings.ToLower(v) == "none" && contains(noneProps, name) {
				v = ""
			}
			return st.SetGlobalProp(name, v)
		}
		return st.ResetGlobalProp(name)
	})
	if err != nil {
		return p.fail(err)
	}
	return 0
}
