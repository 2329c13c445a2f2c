package sim

import (
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
)

// Default-enabled Qubes services per VM type, from qubes-core-agent-linux
// vm-systemd/qubes-sysinit.sh (DEFAULT_ENABLED_*).
var (
	defaultServicesNetVM   = []string{"network-manager", "qubes-network", "qubes-update-check", "qubes-updates-proxy", "meminfo-writer", "qubes-firewall", "software-rendering"}
	defaultServicesProxyVM = []string{"qubes-network", "qubes-firewall", "qubes-update-check", "meminfo-writer", "software-rendering"}
	defaultServicesAppVM   = []string{"qubes-update-check", "meminfo-writer", "tracker", "evolution-data-server", "software-rendering"}
	defaultServicesTplVM   = append(append([]string(nil), defaultServicesAppVM...), "updates-proxy-setup", "software-rendering", "open-urls-in-dvm")
)

// qubesdbServiceName is the name check qubes-sysinit.sh applies to the
// QubesDB /qubes-service/ entries before touching a flag file.
// It is ^[[:alnum:]_][[:alnum:]._-]*$ in the C locale.
func qubesdbServiceName(n string) bool {
	return n != "" && n[0] != '.' && n[0] != '-' && allNameChars(n, "_.-")
}

// qubesVMType is what dom0 exports as /qubes-vm-type (qubes-core-admin
// extension handler for qdb-created): TemplateVM, NetVM (provides
// network, no netvm), ProxyVM (provides network, has a netvm), else AppVM —
// StandaloneVMs and DispVMs included.
func qubesVMType(st *State, d *Domain) string {
	if d.Class == TemplateVM {
		return "TemplateVM"
	}
	if pn, _ := d.PropBool(st, "provides_network"); pn {
		if nv, _, _ := d.Prop(st, "netvm"); nv != "" {
			return "ProxyVM"
		}
		return "NetVM"
	}
	return "AppVM"
}

// qubesVMPersistence is /qubes-vm-persistence.
func qubesVMPersistence(d *Domain) string {
	switch d.Class {
	case AppVM:
		return "rw-only"
	case DispVM:
		return "none"
	}
	return "full"
}

// writeQubesServices is qubes-sysinit.sh at a VM's boot: /run/qubes-service/
// gets the type's defaults, then each service.NAME feature (exported to
// QubesDB as 1 or 0) touches or removes its flag. It runs only at boot: a
// later qvm-service changes QubesDB but no flag file (qubes.md §3.7).
func writeQubesServices(m *Machine, domain string) error {
	st, err := m.Load()
	if err != nil {
		return err
	}
	d := st.Domain(domain)
	if d == nil {
		return fmt.Errorf("%w: %q", ErrNoDomain, domain)
	}
	vmType := qubesVMType(st, d)
	defaults := []string{"meminfo-writer", "software-rendering"}
	switch vmType {
	case "AppVM":
		defaults = defaultServicesAppVM
	case "NetVM":
		defaults = defaultServicesNetVM
	case "ProxyVM":
		defaults = defaultServicesProxyVM
	case "TemplateVM":
		defaults = defaultServicesTplVM
	}
	run := m.Path(domain, "/run")
	for _, dir := range []string{"/run/qubes", "/run/qubes-service"} {
		if err := os.MkdirAll(m.Path(domain, dir), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(m.Path(domain, "/run/qubes"), 0o775); err != nil {
		return err
	}
	touch := func(p string) error {
		f, err := os.OpenFile(m.Path(domain, p), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	for _, p := range []string{
		"/run/qubes/this-is-" + strings.ToLower(vmType),
		"/run/qubes/persistent-" + qubesVMPersistence(d),
	} {
		if err := touch(p); err != nil {
			return err
		}
	}
	for _, s := range defaults {
		if err := touch("/run/qubes-service/" + s); err != nil {
			return err
		}
	}
	var names []string
	for k := range d.Features {
		if n, ok := strings.CutPrefix(k, "service."); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if !qubesdbServiceName(n) {
			log.Printf("qubes-sysinit: ignoring service %q", n)
			continue
		}
		p := "/run/qubes-service/" + n
		if d.Features["service."+n] != "" {
			if err := touch(p); err != nil {
				return err
			}
		} else if err := os.Remove(m.Path(domain, p)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return os.WriteFile(run+"/qubes-service-environment", []byte("\n"), 0o644)
}
