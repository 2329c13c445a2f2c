package qubes

import (
	"context"
	"fmt"
	"strings"
)

// DomainInfo is one line of qvm-ls: what policy evaluation needs of a qube.
type DomainInfo struct {
	Name  string
	Class string // AdminVM, AppVM, TemplateVM, StandaloneVM, DispVM
	State string // Running, Halted, Paused, ...
	// DefaultDispVM is "" when the property is empty.
	DefaultDispVM      string
	TemplateForDispVMs bool
}

// Domains lists every qube with the fields of DomainInfo (qvm-ls
// --raw-data), for policy evaluation.
func (c *Client) Domains(ctx context.Context) ([]DomainInfo, error) {
	out, err := c.admin(ctx, "qvm-ls", "--raw-data", "--fields", "NAME,CLASS,STATE,DEFAULT_DISPVM,TEMPLATE_FOR_DISPVMS")
	if err != nil {
		return nil, fmt.Errorf("list qubes: %w", err)
	}
	var list []DomainInfo
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 5 {
			return nil, fmt.Errorf("list qubes: unexpected qvm-ls line %q", line)
		}
		d := DomainInfo{Name: f[0], Class: f[1], State: f[2], TemplateForDispVMs: f[4] == "True"}
		if f[3] != "-" && f[3] != "None" {
			d.DefaultDispVM = f[3]
		}
		list = append(list, d)
	}
	return list, nil
}
