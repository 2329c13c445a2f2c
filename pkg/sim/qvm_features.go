package sim

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
)

const qvmFeaturesUsage = `usage: qvm-features [--verbose] [--quiet] [--help] [--version] [--unset]
                    VMNAME [FEATURE] [VALUE]
`

// protocolError is qubesd's ProtocolError: qubesadmin re-raises it as an
// exception the tools do not catch, so the user sees the end of a Python
// traceback and exit status 1.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "qubesadmin.exc.ProtocolError: " + e.msg }

func validFeatureName(name string) bool { return name != "" && allNameChars(name, "_.-") }

// checkFeature applies admin.vm.feature.Set's checks and the services
// extension's pre-set hook (qubes.md §3.6, §3.7).
func checkFeature(name, value string) error {
	if !validFeatureName(name) {
		return &protocolError{"feature name contains illegal characters"}
	}
	for _, c := range []byte(value) {
		if c < 0x20 || c > 0x7e {
			return &protocolError{name + " value contains illegal characters"}
		}
	}
	if name == "deferred-netvm-original" || strings.HasPrefix(name, "preload-dispvm") {
		return &protocolError{"feature " + name + " cannot be changed through the Admin API"}
	}
	if svc, ok := strings.CutPrefix(name, "service."); ok {
		switch {
		case svc == "":
			return propErrorf("Service name cannot be empty")
		case strings.Contains(svc, "/"):
			return propErrorf("Service name cannot contain a slash")
		case svc == "." || svc == "..":
			return propErrorf(`Service name cannot be "." or ".."`)
		case len(svc) > 48 && !strings.HasPrefix(svc, "app-dispvm."):
			return propErrorf("Service name must not exceed 48 bytes")
		}
	}
	return nil
}

// SetFeature sets feature name of d after the checks qubesd applies.
func (d *Domain) SetFeature(name, value string) error {
	if err := checkFeature(name, value); err != nil {
		return err
	}
	if d.Features == nil {
		d.Features = map[string]string{}
	}
	d.Features[name] = value
	return nil
}

// failFeature reports a protocol error like an uncaught Python exception.
func (p *qaParser) failFeature(err error) int {
	var pe *protocolError
	if errors.As(err, &pe) {
		fmt.Fprintln(p.c.Stdio.Err, pe.Error())
		return 1
	}
	return p.fail(err)
}

func qvmFeatures(c *Call) int {
	p := newQAParser(c, qvmFeaturesUsage)
	var del bool
	p.boolFlag(&del, "--unset", "--default", "--delete", "-D")
	pos, unknown, err := p.parse(c.Args)
	if err == nil {
		err = checkPositionals(pos, unknown, []string{"VMNAME"}, 3)
	}
	if err != nil {
		return p.fail(err)
	}
	out := bufio.NewWriter(c.Stdio.Out)
	defer out.Flush()
	code := 0
	switch {
	case len(pos) == 1:
		if del {
			return p.fail(usageErrorf("--unset requires a feature"))
		}
		err = c.Machine.View(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			var rows [][]string
			for _, k := range sortedKeys(ds[0].Features) {
				rows = append(rows, []string{k, ds[0].Features[k]})
			}
			printTable(out, rows)
			return nil
		})
	case del:
		if len(pos) == 3 {
			return p.fail(usageErrorf("cannot both set and unset a value"))
		}
		err = c.Machine.Update(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			delete(ds[0].Features, pos[1])
			return nil
		})
	case len(pos) == 2:
		err = c.Machine.View(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			v, ok := ds[0].Features[pos[1]]
			if !ok {
				code = 1
				return nil
			}
			fmt.Fprintln(out, v)
			return nil
		})
	default:
		err = c.Machine.Update(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			return ds[0].SetFeature(pos[1], pos[2])
		})
	}
	if err != nil {
		return p.failFeature(err)
	}
	return code
}
