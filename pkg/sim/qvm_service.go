package sim

import (
	"bufio"
	"fmt"
	"strings"
)

const qvmServiceUsage = `usage: qvm-service [--verbose] [--quiet] [--help] [--version] [--unset]
                   [--list] [--enable] [--disable]
                   VMNAME [SERVICE] [VALUE]
`

// qvmService is qvm-service: sugar for the service.NAME features, on = '1',
// off = "" (qubes.md §3.7).
func qvmService(c *Call) int {
	p := newQAParser(c, qvmServiceUsage)
	var del, list bool
	var flagValue *string
	p.boolFlag(&del, "--unset", "--default", "--delete", "-D")
	p.boolFlag(&list, "--list", "-l")
	p.add(0, func([]string) error { v := "1"; flagValue = &v; return nil }, "--enable", "-e")
	p.add(0, func([]string) error { v := "0"; flagValue = &v; return nil }, "--disable", "-d")
	pos, unknown, err := p.parse(c.Args)
	if err == nil {
		err = checkPositionals(pos, unknown, []string{"VMNAME"}, 3)
	}
	if err != nil {
		return p.fail(err)
	}
	value := flagValue
	if len(pos) == 3 {
		value = &pos[2]
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
				if svc, ok := strings.CutPrefix(k, "service."); ok {
					rows = append(rows, []string{svc, onOff(ds[0].Features[k])})
				}
			}
			printTable(out, rows)
			return nil
		})
	case del:
		if value != nil {
			return p.fail(usageErrorf("cannot both set and unset a value"))
		}
		err = c.Machine.Update(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			delete(ds[0].Features, "service."+pos[1])
			return nil
		})
	case value != nil:
		err = c.Machine.Update(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			on, err := parseQubesBool(*value, "value")
			if err != nil {
				return err
			}
			v := ""
			if on {
				v = "1"
			}
			return ds[0].SetFeature("service."+pos[1], v)
		})
	default:
		err = c.Machine.View(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			v, ok := ds[0].Features["service."+pos[1]]
			if !ok {
				code = 1
				return nil
			}
			fmt.Fprintln(out, onOff(v))
			return nil
		})
	}
	if err != nil {
		return p.failFeature(err)
	}
	return code
}

// onOff is Python truthiness of a feature value, as qvm-service prints it.
func onOff(v string) string {
	if v != "" {
		return "on"
	}
	return "off"
}
