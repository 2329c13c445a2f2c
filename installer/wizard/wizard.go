// Package wizard asks the installer's questions on a terminal: each with a
// default (Enter keeps it) and validation (a bad answer is asked again),
// and the two confirmations — the plan, and the persistent enable of
// qvm-remote-dom0, which only the exact answer "yes" accepts.
package wizard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/qubes-claw/qubes-claw/installer/plan"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// ErrNoAnswer is returned when input ends before a question is answered.
var ErrNoAnswer = errors.New("input ended before the question was answered")

// Prompter asks questions on In/Out.
type Prompter struct {
	In  *bufio.Reader
	Out io.Writer
}

// line reads one answer without its line ending.
func (p *Prompter) line() (string, error) {
	s, err := p.In.ReadString('\n')
	if err != nil && s == "" {
		return "", ErrNoAnswer
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// Ask asks until check accepts the answer; an empty answer is def.
func (p *Prompter) Ask(question, def string, check func(string) error) (string, error) {
	for {
		if def != "" {
			fmt.Fprintf(p.Out, "%s [%s]: ", question, def)
		} else {
			fmt.Fprintf(p.Out, "%s: ", question)
		}
		s, err := p.line()
		if err != nil {
			return "", err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			s = def
		}
		if check != nil {
			if err := check(s); err != nil {
				fmt.Fprintf(p.Out, "  %v\n", err)
				continue
			}
		}
		return s, nil
	}
}

// YesNo asks a y/n question.
func (p *Prompter) YesNo(question string, def bool) (bool, error) {
	d := "y/N"
	if def {
		d = "Y/n"
	}
	for {
		fmt.Fprintf(p.Out, "%s [%s]: ", question, d)
		s, err := p.line()
		if err != nil {
			return false, err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "":
			return def, nil
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
		fmt.Fprintln(p.Out, "  answer y or n")
	}
}

// RiskText is shown before the persistent enable question.
const RiskText = `qvm-remote-dom0 runs, as root in dom0, any command an authorized VM sends.
Whoever controls that VM controls dom0, every qube and all your data.
Enabling it persistently starts it now and at every boot.
`

// ConfirmPersistent shows the risk and accepts only the exact answer "yes";
// "y", "YES", an empty line or the end of input all refuse.
func (p *Prompter) ConfirmPersistent(vm string) (bool, error) {
	fmt.Fprint(p.Out, "\n"+RiskText)
	fmt.Fprintf(p.Out, "Authorized VM: %s\n", vm)
	fmt.Fprint(p.Out, "Type yes to enable qvm-remote-dom0 at every boot (anything else keeps it off): ")
	s, err := p.line()
	if errors.Is(err, ErrNoAnswer) {
		fmt.Fprintln(p.Out)
		return false, nil
	}
	if s != "yes" {
		fmt.Fprintln(p.Out, "not enabled persistently (the answer must be exactly \"yes\")")
		return false, nil
	}
	return true, nil
}

func vmName(s string) error {
	if err := qubes.ValidateVMName(s); err != nil {
		return fmt.Errorf("not a VM name (a letter, then letters, digits, _ . -; at most 31)")
	}
	return nil
}

func oneOf(list []string) func(string) error {
	return func(s string) error {
		if !slices.Contains(list, s) {
			return fmt.Errorf("one of: %s", strings.Join(list, ", "))
		}
		return nil
	}
}

func number(min int) func(string) error {
	return func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < min {
			return fmt.Errorf("a whole number, at least %d", min)
		}
		return nil
	}
}

// Run asks every question, starting from cfg's values (defaults and the
// answers file), and updates cfg. vms is the machine's qubes: templates
// and client VMs must exist.
func Run(p *Prompter, cfg *plan.Config, vms []qubes.VMInfo) error {
	exists := map[string]string{}
	for _, v := range vms {
		exists[v.Name] = v.Class
	}
	templates := plan.Templates(vms)
	a := &cfg.Agent
	var err error
	ask := func(dst *string, q string, check func(string) error) {
		if err == nil {
			*dst, err = p.Ask(q, *dst, check)
		}
	}
	askInt := func(dst *int, q string, min int) {
		s := strconv.Itoa(*dst)
		ask(&s, q, number(min))
		if err == nil {
			*dst, _ = strconv.Atoi(s)
		}
	}
	fmt.Fprintln(p.Out, "qubes-claw installer: Enter keeps the value in brackets.")
	ask(&a.Name, "Agent VM name", vmName)
	ask(&a.Class, "Agent VM class (StandaloneVM or AppVM)", oneOf(plan.Classes))
	if a.Template == "" && len(templates) > 0 {
		a.Template = templates[0]
	}
	ask(&a.Template, "Template ("+strings.Join(templates, ", ")+")", func(s string) error {
		if exists[s] != "TemplateVM" {
			return fmt.Errorf("no template named %q; existing: %s", s, strings.Join(templates, ", "))
		}
		return nil
	})
	ask(&a.Label, "Label", oneOf(plan.Labels))
	if a.NetVM == "" {
		a.NetVM = "default"
	}
	ask(&a.NetVM, "NetVM (a VM name, none, or default)", func(s string) error {
		if s == "none" || s == "default" || exists[s] != "" {
			return nil
		}
		return fmt.Errorf("no VM named %q", s)
	})
	if a.NetVM == "default" {
		a.NetVM = ""
	}
	askInt(&a.Memory, "Memory (MiB)", 1)
	askInt(&a.MaxMem, "Maximum memory (MiB, 0: no balancing)", 0)
	askInt(&a.VCPUs, "Virtual CPUs", 1)
	if err == nil {
		a.Autostart, err = p.YesNo("Start the agent VM at boot", a.Autostart)
	}
	clients := strings.Join(cfg.Clients.VMs, ",")
	if clients == "" {
		clients = "none"
	}
	ask(&clients, "Client VMs allowed to reach it (comma-separated, or none)", func(s string) error {
		for _, vm := range splitList(s) {
			if exists[vm] == "" {
				return fmt.Errorf("no VM named %q", vm)
			}
			if vm == a.Name {
				return fmt.Errorf("the agent VM cannot be its own client")
			}
		}
		return nil
	})
	cfg.Clients.VMs = splitList(clients)
	ports := make([]string, len(cfg.Ports))
	for i, n := range cfg.Ports {
		ports[i] = strconv.Itoa(n)
	}
	portList := strings.Join(ports, ",")
	ask(&portList, "Ports of the agent VM (proxy, gateway)", func(s string) error {
		if len(splitList(s)) == 0 {
			return fmt.Errorf("at least one port")
		}
		for _, x := range splitList(s) {
			if n, e := strconv.Atoi(x); e != nil || n < 1 || n > 65535 {
				return fmt.Errorf("%q is not a TCP port (1-65535)", x)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	cfg.Ports = cfg.Ports[:0]
	for _, x := range splitList(portList) {
		n, _ := strconv.Atoi(x)
		cfg.Ports = append(cfg.Ports, n)
	}
	return askRemote(p, cfg, exists)
}

func askRemote(p *Prompter, cfg *plan.Config, exists map[string]string) error {
	r := &cfg.Remote
	var err error
	if r.Enabled, err = p.YesNo("Authorize a VM for qvm-remote (run commands in dom0)", r.Enabled); err != nil || !r.Enabled {
		return err
	}
	if r.AuthorizeAgent {
		r.VM = cfg.Agent.Name
	}
	if r.VM, err = p.Ask("VM authorized for qvm-remote (a separate admin VM without network is the safe choice)", r.VM, vmName); err != nil {
		return err
	}
	r.AuthorizeAgent = false
	if r.VM == cfg.Agent.Name {
		fmt.Fprintf(p.Out, `
WARNING: %s is the agent VM. It reaches the internet and runs an AI agent;
authorizing it for qvm-remote hands dom0 to whatever controls that agent.
It gets mode "restricted": only commands matching the allow list run.
`, r.VM)
		ok, err := p.YesNo("Authorize the agent VM anyway", false)
		if err != nil {
			return err
		}
		if !ok {
			r.Enabled = false
			fmt.Fprintln(p.Out, "qvm-remote: no VM authorized")
			return nil
		}
		r.AuthorizeAgent = true
		allow := strings.Join(r.Allow, ",")
		if allow, err = p.Ask("Allowed commands (patterns with * and ?, comma-separated)", allow, func(s string) error {
			if len(splitList(s)) == 0 {
				return fmt.Errorf("restricted mode needs at least one pattern")
			}
			return nil
		}); err != nil {
			return err
		}
		r.Allow = splitList(allow)
	} else if exists[r.VM] == "" {
		fmt.Fprintf(p.Out, "%s will be created: AppVM, no network, label %s\n", r.VM, r.Label)
		r.Create = true
		if r.Label, err = p.Ask("Label of the admin VM", r.Label, oneOf(plan.Labels)); err != nil {
			return err
		}
	}
	// Never from the answers file here: on a terminal only a typed "yes" counts.
	r.PersistentEnable = ""
	ok, err := p.ConfirmPersistent(r.VM)
	if err != nil {
		return err
	}
	if ok {
		r.PersistentEnable = plan.Accept
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" && x != "none" {
			out = append(out, x)
		}
	}
	return out
}
