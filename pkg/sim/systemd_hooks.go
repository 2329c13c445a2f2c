package sim

import (
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The systemd layer acts at domain boot and shutdown through DomainHooks,
// inside the domain's supervisor.
func init() {
	DomainHooks.Start = append(DomainHooks.Start, systemdBoot)
	DomainHooks.Stop = append(DomainHooks.Stop, systemdShutdown)
}

// systemdBoot is a domain's boot as far as systemd goes, in this order:
//
//  1. qubes-sysinit (VMs): the Qubes service flags in /run/qubes-service;
//  2. qubes-early-vm-config (VMs): /rw/config/rc.local-early.d/*.rc, then
//     /rw/config/rc.local-early — both services are Before=sysinit.target,
//     so they precede every unit of the boot targets;
//  3. the system manager's sysinit.target and basic.target units;
//  4. qubes-misc-post (VMs): /rw/config/rc.local.d/*.rc, then
//     /rw/config/rc.local. The real service is WantedBy=multi-user.target and
//     After= network and mount units, which are all done by then; the
//     simulator runs it first among multi-user.target's jobs, so a unit
//     ordered After=qubes-misc-post.service starts after the hooks, as in
//     Qubes, and the hooks' own `systemctl start` or `loginctl enable-linger`
//     act on a running system manager;
//  5. multi-user.target and graphical.target units;
//  6. the user managers of lingering users, started as logind starts
//     user@UID.service: in the background, so the boot does not wait for
//     (or hang on) any user unit.
//
// A unit or hook that fails does not fail the boot, as under systemd; the
// failure is in the journal.
func systemdBoot(s *Supervisor) error {
	vm := s.Domain != Dom0
	if vm {
		if err := writeQubesServices(s.M, s.Domain); err != nil {
			return fmt.Errorf("qubes-sysinit: %w", err)
		}
		runRCHooks(s, "qubes-early-vm-config.service", "/rw/config/rc.local-early")
	}
	sys := systemManager(s.M, s.Domain)
	sys.boot(s.Spawn, func(target string) {
		if vm && target == "multi-user.target" {
			runRCHooks(s, "qubes-misc-post.service", "/rw/config/rc.local")
		}
	})
	for _, u := range lingeringUsers(s.M, s.Domain) {
		if err := userManager(s.M, s.Domain, u).ensureUserManager(s.Spawn, false); err != nil {
			log.Printf("user manager of %s: %v", u, err)
		}
	}
	return nil
}

// rcHookTimeout bounds one boot hook. The Qubes services that run them are
// oneshots without a start timeout, but a hung hook does not keep a real
// qvm-start from returning (the qrexec agent is not ordered after them);
// here the boot waits for the hooks, so a hung one is killed instead.
const rcHookTimeout = 90 * time.Second

// runRCHooks runs, as root and one after the other, what Qubes'
// misc-post.sh (base /rw/config/rc.local) or qubes-early-vm-config.sh (base
// /rw/config/rc.local-early) runs: every BASE.d/*.rc, sorted, then BASE;
// each only if it is a regular file and executable, and a failing hook
// does not stop the next. Their output goes to the journal of unit.
func runRCHooks(s *Supervisor, unit, base string) {
	g := systemManager(s.M, s.Domain)
	for _, h := range rcHooks(s.M, s.Domain, base) {
		j, err := openJournal(g.journalPath(unit))
		if err != nil {
			log.Printf("%s: %v", unit, err)
			return
		}
		p, err := s.Spawn(SpawnRequest{Argv: []string{h}, User: "root", Stdout: j, Stderr: j, Dir: "/", Tag: "hook:" + unit})
		j.Close()
		if err != nil {
			g.journal(unit, fmt.Sprintf("%s: %s: %v", unit, h, err))
			continue
		}
		done := make(chan int, 1)
		go func() { code, _ := p.Wait(); done <- code }()
		select {
		case code := <-done:
			if code != 0 {
				g.journal(unit, fmt.Sprintf("%s: %s exited with status %d", unit, h, code))
			}
		case <-time.After(rcHookTimeout):
			g.journal(unit, fmt.Sprintf("%s: %s timed out. Killing.", unit, h))
			p.Signal(syscall.SIGKILL)
			<-done
		}
	}
}

// rcHooks lists the domain paths of the hooks of base that would run.
func rcHooks(m *Machine, domain, base string) []string {
	var cands []string
	if ents, err := os.ReadDir(m.Path(domain, base+".d")); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".rc") {
				cands = append(cands, base+".d/"+e.Name())
			}
		}
	}
	sort.Strings(cands) // ReadDir sorts already; the glob's C-locale order
	cands = append(cands, base)
	var out []string
	for _, c := range cands {
		h, err := m.ResolveInRoot(domain, c)
		if err != nil {
			continue
		}
		// [ -f "$rc" ] && [ -x "$rc" ], as root: any execute bit.
		if fi, err := os.Stat(h); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			out = append(out, c)
		}
	}
	return out
}

// systemdShutdown stops the user managers' units, then the system's, each
// in reverse activation order, before the supervisor kills what is left.
// The user managers' boot jobs are cancelled first, so none starts a unit
// while its units are being stopped.
func systemdShutdown(s *Supervisor) {
	users := userManagers(s.M, s.Domain)
	for _, u := range users {
		s.signal(0, userManager(s.M, s.Domain, u).managerTag(), syscall.SIGKILL)
	}
	for _, u := range users {
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
