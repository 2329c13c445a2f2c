package sim

import (
	"fmt"
	"log"
	"os"
	"sort"
)

// The systemd layer acts at domain boot and shutdown through DomainHooks,
// inside the domain's supervisor.
func init() {
	DomainHooks.Start = append(DomainHooks.Start, systemdBoot)
	DomainHooks.Stop = append(DomainHooks.Stop, systemdShutdown)
}

// systemdBoot is a domain's boot as far as systemd goes: qubes-sysinit's
// service flags (VMs), the system manager's enabled units, then the user
// managers of lingering users. A unit that fails does not fail the boot,
// as under systemd; the failure is in the unit's state and journal.
func systemdBoot(s *Supervisor) error {
	if s.Domain != Dom0 {
		if err := writeQubesServices(s.M, s.Domain); err != nil {
			return fmt.Errorf("qubes-sysinit: %w", err)
		}
	}
	sys := systemManager(s.M, s.Domain)
	sys.boot(s.Spawn)
	for _, u := range lingeringUsers(s.M, s.Domain) {
		if err := userManager(s.M, s.Domain, u).ensureUserManager(s.Spawn); err != nil {
			log.Printf("user manager of %s: %v", u, err)
		}
	}
	return nil
}

// systemdShutdown stops the user managers' units, then the system's, each
// in reverse activation order, before the supervisor kills what is left.
func systemdShutdown(s *Supervisor) {
	for _, u := range userManagers(s.M, s.Domain) {
		userManager(s.M, s.Domain, u).shutdown()
	}
	systemManager(s.M, s.Domain).shutdown()
}

// lingerDir is where logind records linger (qubes.md §2.4).
const lingerDir = "/var/lib/systemd/linger"

// lingeringUsers lists the users with a linger file in domain, sorted.
func lingeringUsers(m *Machine, domain string) []string {
	ents, err := os.ReadDir(m.Path(domain, lingerDir))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}
