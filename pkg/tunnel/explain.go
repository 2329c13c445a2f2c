package tunnel

import (
	"context"
	"fmt"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/policy"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// System reads what policy evaluation needs of every qube: class, power
// state and disposable settings (qvm-ls), and tags (qvm-tags per qube).
func System(ctx context.Context, c *qubes.Client) (policy.System, error) {
	list, err := c.Domains(ctx)
	if err != nil {
		return nil, err
	}
	sys := policy.System{}
	for _, d := range list {
		tags, err := c.Tags(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		sys[d.Name] = policy.Domain{
			Name: d.Name, Class: d.Class, Tags: tags,
			DefaultDispVM: d.DefaultDispVM, TemplateForDispVMs: d.TemplateForDispVMs,
			Running: d.Name == "dom0" || d.State == "Running",
		}
	}
	return sys, nil
}

// ParseCall splits "SERVICE+ARG" (the argument may be absent).
func ParseCall(s string) (service, arg string, err error) {
	service, arg, _ = strings.Cut(s, "+")
	if err := qubes.ValidateService(service); err != nil {
		return "", "", err
	}
	if err := qubes.ValidateArgument(arg); err != nil {
		return "", "", err
	}
	return service, arg, nil
}

// Explain evaluates a call over the policy directories and says which file
// and line decide it. A call from dom0 is explained too, with a note that
// qrexec-client -d (what the dom0 tunnel uses) never consults policy.
func Explain(dirs []string, req policy.Request, sys policy.System) (policy.Explanation, error) {
	pol, err := policy.LoadDirs(dirs...)
	if err != nil && pol == nil {
		return policy.Explanation{}, fmt.Errorf("load policy: %w", err)
	}
	ex := pol.Explain(req, sys)
	if req.Source == "dom0" || req.Source == "@adminvm" {
		ex.Notes = append(ex.Notes, "calls made from dom0 with qrexec-client -d (as the dom0 tunnel does) bypass policy; this is what a policy-mediated call from dom0 would get")
	}
	if _, ok := sys[req.Source]; !ok && req.Source != "dom0" {
		ex.Notes = append(ex.Notes, fmt.Sprintf("source %q is not a known qube", req.Source))
	}
	return ex, nil
}
