package qubes

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The calls below serve deployments (qubes-claw-install): reading whether a
// property is at its default, removing a qube, and dom0's systemctl.

// Pref is one property as `qvm-prefs VM` lists it (qubes.md §3.4).
type Pref struct {
	Value string
	// Default is set when the property was never set (the "D" column).
	Default bool
}

// Prefs lists every property of vm (qvm-prefs VM): lines "NAME  D|-  VALUE".
func (c *Client) Prefs(ctx context.Context, vm string) (map[string]Pref, error) {
	if err := ValidateVMName(vm); err != nil {
		return nil, err
	}
	out, err := c.admin(ctx, "qvm-prefs", vm)
	if err != nil {
		return nil, fmt.Errorf("list properties of %s: %w", vm, err)
	}
	m := map[string]Pref{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		m[f[0]] = Pref{Default: f[1] == "D", Value: strings.Join(f[2:], " ")}
	}
	return m, nil
}

// Remove removes vm (qvm-remove --force VM, which does not ask).
func (c *Client) Remove(ctx context.Context, vm string) error {
	if err := ValidateVMName(vm); err != nil {
		return err
	}
	if _, err := c.admin(ctx, "qvm-remove", "--force", vm); err != nil {
		return fmt.Errorf("remove %s: %w", vm, err)
	}
	return nil
}

// Systemctl runs dom0's systemctl with args (system manager).
func (c *Client) Systemctl(ctx context.Context, args ...string) ([]byte, error) {
	for _, a := range args {
		if err := validateValue("systemctl argument", a); err != nil {
			return nil, err
		}
	}
	out, err := c.run(ctx, append([]string{"systemctl"}, args...), nil)
	if err != nil {
		return out, fmt.Errorf("systemctl %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// UnitEnabled reports whether a unit is enabled (systemctl is-enabled:
// exit 0 enabled, non-zero otherwise; the output names the state).
func (c *Client) UnitEnabled(ctx context.Context, unit string) (bool, error) {
	return c.unitQuery(ctx, "is-enabled", unit)
}

// UnitActive reports whether a unit is active (systemctl is-active).
func (c *Client) UnitActive(ctx context.Context, unit string) (bool, error) {
	return c.unitQuery(ctx, "is-active", unit)
}

func (c *Client) unitQuery(ctx context.Context, verb, unit string) (bool, error) {
	if err := validateIdent("unit", unit); err != nil {
		return false, err
	}
	_, err := c.run(ctx, []string{"systemctl", verb, "--quiet", unit}, nil)
	var ce *CommandError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ce) && ce.ExitCode > 0:
		return false, nil
	}
	return false, fmt.Errorf("systemctl %s %s: %w", verb, unit, err)
}

// VMInfo is one qube as qvm-ls lists it.
type VMInfo struct {
	Name, Class string
}

// List lists every qube (qvm-ls --raw-data --fields name,class).
func (c *Client) List(ctx context.Context) ([]VMInfo, error) {
	out, err := c.admin(ctx, "qvm-ls", "--raw-data", "--fields", "name,class")
	if err != nil {
		return nil, fmt.Errorf("list qubes: %w", err)
	}
	var vms []VMInfo
	for _, line := range strings.Split(string(out), "\n") {
		name, class, ok := strings.Cut(strings.TrimSpace(line), "|")
		if ok && name != "" {
			vms = append(vms, VMInfo{Name: name, Class: class})
		}
	}
	return vms, nil
}
