package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/remote/daemon"
)

// Build computes the plan's items from the answers. Reading the machine is
// left to the items, except the daemon config, whose new content keeps what
// the file holds now.
func Build(c *Config) ([]Item, error) {
	a := c.Agent
	items := []Item{
		&VMItem{Name: a.Name, Class: a.Class, Template: a.Template, Label: a.Label},
		&PrefsItem{VM: a.Name, Prefs: AgentPrefs(a)},
		&TagsItem{VM: a.Name, Tags: []string{a.Tag}},
		&FeaturesItem{VM: a.Name, What: "features", Features: AgentFeatures(c)},
		&FeaturesItem{VM: a.Name, What: "services", Features: serviceFeatures(a.Services)},
	}
	for _, vm := range c.Clients.VMs {
		items = append(items, &TagsItem{VM: vm, Tags: []string{c.Clients.Tag}})
	}
	pol, err := RenderPolicy(c)
	if err != nil {
		return nil, fmt.Errorf("%w: policy: %v", ErrInvalid, err)
	}
	items = append(items, &FileItem{
		Name: "policy " + domainPath(c.Policy.File), Path: string(c.Policy.File),
		Data: pol, Mode: 0o664, Check: checkPolicy,
	})
	if c.Tunnel.Enabled {
		conf := &FileItem{
			Name: "tunnel config " + domainPath(c.Tunnel.Config), Path: string(c.Tunnel.Config),
			Data: RenderTunnelConfig(c), Mode: 0o644, Check: checkTunnelConfig,
		}
		items = append(items, conf, &UnitItem{Unit: c.Tunnel.Unit, Reads: []*FileItem{conf}})
	}
	r := c.Remote
	if r.Enabled {
		if !r.AuthorizeAgent && r.Create {
			items = append(items,
				&VMItem{Name: r.VM, Class: "AppVM", Template: r.template(a), Label: r.Label},
				&PrefsItem{VM: r.VM, Prefs: []Pref{{"label", r.Label}, {"netvm", ""}}},
			)
		}
		items = append(items, &KeyItem{VM: r.VM, KeyDir: string(r.KeyDir)})
		if r.EffectiveMode() == "restricted" {
			old, err := os.ReadFile(string(r.DaemonConfig))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			data, err := DaemonVMEntry(old, daemon.VM{Name: r.VM, Mode: "restricted", Allow: r.Allow})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.DaemonConfig, err)
			}
			items = append(items, &FileItem{
				Name: "qvm-remote-dom0 policy of " + r.VM, Path: string(r.DaemonConfig),
				Data: data, Mode: 0o644, Check: checkDaemonConfig,
			})
		}
		if r.PersistentEnable == Accept {
			items = append(items, &EnableItem{Unit: r.Unit})
		}
	}
	if c.Setup.Enabled {
		// Last: the VM starts here, after its service flags are set, so
		// its units see them from this boot on.
		items = append(items,
			&HandlerItem{VM: a.Name, Service: c.Policy.Service, Config: RenderConnectConfig(c)},
			&SetupItem{VM: a.Name, Setup: c.Setup, Ports: c.Ports},
		)
	}
	return items, nil
}

func (r Remote) template(a Agent) string {
	if r.Template != "" {
		return r.Template
	}
	return a.Template
}

// AgentPrefs are the agent VM's properties in the order they are set.
func AgentPrefs(a Agent) []Pref {
	p := []Pref{{"label", a.Label}}
	if a.NetVM != "" {
		nv := a.NetVM
		if nv == "none" {
			nv = ""
		}
		p = append(p, Pref{"netvm", nv})
	}
	return append(p,
		Pref{"memory", strconv.Itoa(a.Memory)},
		Pref{"maxmem", strconv.Itoa(a.MaxMem)},
		Pref{"vcpus", strconv.Itoa(a.VCPUs)},
		Pref{"autostart", pyBool(a.Autostart)},
	)
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// AgentFeatures are the agent VM's features: its role, ports, description,
// and the supported-service.* entries the Qubes settings GUI reads.
func AgentFeatures(c *Config) []Feature {
	ports := make([]string, len(c.Ports))
	for i, p := range c.Ports {
		ports[i] = strconv.Itoa(p)
	}
	f := []Feature{
		{"qubes-claw.role", "server"},
		{"qubes-claw.ports", strings.Join(ports, ",")},
		{"qubes-claw.description", c.Agent.Description},
	}
	for _, s := range c.Agent.Services {
		f = append(f, Feature{"supported-service." + s, "1"})
	}
	return f
}

func serviceFeatures(services []string) []Feature {
	var f []Feature
	for _, s := range services {
		f = append(f, Feature{"service." + s, "1"})
	}
	return f
}

// Check verifies what the answers need from the machine before anything is
// changed: the templates exist and are templates, client VMs and the netvm
// exist.
func Check(ctx context.Context, c *Config, q *qubes.Client) error {
	vms, err := q.List(ctx)
	if err != nil {
		return err
	}
	class := map[string]string{}
	for _, v := range vms {
		class[v.Name] = v.Class
	}
	needTemplate := func(what, name string) error {
		switch class[name] {
		case "TemplateVM":
			return nil
		case "":
			return fmt.Errorf("%w: %s %s does not exist (templates: %s)", ErrInvalid, what, name, strings.Join(Templates(vms), ", "))
		}
		return fmt.Errorf("%w: %s %s is a %s, not a TemplateVM", ErrInvalid, what, name, class[name])
	}
	a := c.Agent
	_, agentExists := class[a.Name]
	if !agentExists && (a.Class == "AppVM" || a.Template != "") {
		if a.Template == "" {
			return fmt.Errorf("%w: agent.template is needed to create an AppVM", ErrInvalid)
		}
		if err := needTemplate("agent.template", a.Template); err != nil {
			return err
		}
	}
	if a.NetVM != "" && a.NetVM != "none" && class[a.NetVM] == "" {
		return fmt.Errorf("%w: agent.netvm %s does not exist", ErrInvalid, a.NetVM)
	}
	for _, vm := range c.Clients.VMs {
		if class[vm] == "" {
			return fmt.Errorf("%w: client VM %s does not exist", ErrInvalid, vm)
		}
	}
	if c.Setup.Enabled && c.Setup.APIKeyFile != "" {
		if _, err := os.ReadFile(string(c.Setup.APIKeyFile)); err != nil {
			return fmt.Errorf("%w: setup.api_key_file: %v", ErrInvalid, err)
		}
	}
	r := c.Remote
	if r.Enabled && !r.AuthorizeAgent {
		if _, ok := class[r.VM]; !ok {
			if !r.Create {
				return fmt.Errorf("%w: remote.vm %s does not exist and remote.create is off", ErrInvalid, r.VM)
			}
			if err := needTemplate("remote.template", r.template(a)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Templates lists the TemplateVMs among vms.
func Templates(vms []qubes.VMInfo) []string {
	var out []string
	for _, v := range vms {
		if v.Class == "TemplateVM" {
			out = append(out, v.Name)
		}
	}
	return out
}

// Step is an item's diff, computed before anything is applied.
type Step struct {
	Item Item
	Diff []string
}

// Diff computes every item's difference (the plan as shown). Items after a
// missing VM read it as empty, so a dry run on a fresh machine shows all.
func Diff(ctx context.Context, items []Item, env *Env) ([]Step, error) {
	steps := make([]Step, len(items))
	for i, it := range items {
		d, err := it.Diff(ctx, env)
		if err != nil {
			return nil, &StepError{Step: i + 1, Total: len(items), Title: it.Title(), Err: err}
		}
		steps[i] = Step{Item: it, Diff: d}
	}
	return steps, nil
}

// PrintPlan writes the plan: one line per step, its diff indented.
func PrintPlan(w io.Writer, steps []Step) {
	for i, s := range steps {
		state := "unchanged"
		if len(s.Diff) > 0 {
			state = "will change"
		}
		fmt.Fprintf(w, "[%d/%d] %s: %s\n", i+1, len(steps), s.Item.Title(), state)
		for _, l := range s.Diff {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
}

// Apply runs every item in order: each re-reads its state (an earlier step
// may have changed it) and applies only when it differs, printing
// "[i/n] title ... changed|unchanged". The record is saved after every
// applied step, so a failure part-way can still be undone.
func Apply(ctx context.Context, items []Item, env *Env, recordPath string, w io.Writer) (changed int, err error) {
	n := len(items)
	for i, it := range items {
		fmt.Fprintf(w, "[%d/%d] %s ... ", i+1, n, it.Title())
		d, err := it.Diff(ctx, env)
		if err == nil && len(d) > 0 {
			err = it.Apply(ctx, env)
			if serr := env.Rec.Save(recordPath); err == nil {
				err = serr
			}
		}
		if err != nil {
			fmt.Fprintln(w, "failed")
			return changed, &StepError{Step: i + 1, Total: n, Title: it.Title(), Err: err}
		}
		if len(d) > 0 {
			changed++
			fmt.Fprintln(w, "changed")
		} else {
			fmt.Fprintln(w, "unchanged")
		}
	}
	return changed, nil
}
