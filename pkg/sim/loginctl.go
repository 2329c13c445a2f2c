package sim

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// loginctl covers linger: enable-linger, disable-linger, show-user and
// list-users. Linger is the file /var/lib/systemd/linger/USER in the
// domain's root, so in an AppVM it is lost at the next start (its /var comes
// from the template) while in a TemplateVM or StandaloneVM it persists
// (qubes.md §2.4).
func loginctl(c *Call) int {
	var pos, props []string
	value := false
	args := c.Args
	for i := 0; i < len(args); i++ {
		a := args[i]
		k, v, hasV := strings.Cut(a, "=")
		switch {
		case a == "--value":
			value = true
		case k == "-p" || k == "--property" || strings.HasPrefix(a, "-p") && !strings.HasPrefix(a, "--"):
			switch {
			case hasV:
			case len(a) > 2 && a[1] != '-':
				v = a[2:]
			case i+1 < len(args):
				i++
				v = args[i]
			default:
				return c.Errorf(1, "option requires an argument -- 'p'")
			}
			props = append(props, strings.Split(v, ",")...)
		case a == "--no-pager" || a == "--no-legend" || a == "--no-ask-password" || a == "-a" || a == "--all":
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprintf(c.Stdio.Err, "%s: unrecognized option '%s'\n", c.Name, a)
			return 1
		default:
			pos = append(pos, a)
		}
	}
	verb := "list-sessions"
	if len(pos) > 0 {
		verb, pos = pos[0], pos[1:]
	}
	self := callerUser(c)
	users := pos
	if len(users) == 0 {
		users = []string{self}
	}
	for _, u := range users {
		if !knownUser(c, u) {
			fmt.Fprintf(c.Stdio.Err, "Failed to look up user %s: No such process\n", u)
			return 1
		}
	}
	switch verb {
	case "enable-linger", "disable-linger":
		for _, u := range users {
			p := c.Machine.Path(c.Domain, lingerDir+"/"+u)
			if verb == "disable-linger" {
				// The user manager is left running: the caller's session
				// keeps it (see ensureUserManager).
				if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
					return c.Errorf(1, "Could not disable linger: %v", err)
				}
				continue
			}
			if err := os.MkdirAll(c.Machine.Path(c.Domain, lingerDir), 0o755); err != nil {
				return c.Errorf(1, "Could not enable linger: %v", err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return c.Errorf(1, "Could not enable linger: %v", err)
			}
			// logind queues the start of user@UID.service and returns:
			// nothing waits for the user's units.
			g := userManager(c.Machine, c.Domain, u)
			if err := g.ensureUserManager(g.spawner(), false); err != nil {
				return c.Errorf(1, "Could not enable linger: %v", err)
			}
		}
		return 0
	case "show-user":
		for i, u := range users {
			linger := lingers(c.Machine, c.Domain, u)
			up := userManager(c.Machine, c.Domain, u).userManagerUp()
			if !linger && !up && u != self {
				fmt.Fprintf(c.Stdio.Err, "Failed to get user: User ID %d is not logged in or lingering\n", uidOf(u))
				return 1
			}
			if i > 0 && !value {
				fmt.Fprintln(c.Stdio.Out)
			}
			p := map[string]string{
				"UID": strconv.Itoa(uidOf(u)), "GID": strconv.Itoa(uidOf(u)), "Name": u,
				"RuntimePath": fmt.Sprintf("/run/user/%d", uidOf(u)), "Linger": yesNo(linger),
				"State": map[bool]string{true: "lingering", false: "active"}[linger && u != self],
			}
			names := props
			if len(names) == 0 {
				names = []string{"UID", "GID", "Name", "RuntimePath", "State", "Linger"}
			}
			for _, n := range names {
				v, ok := p[n]
				if !ok {
					continue
				}
				if value {
					fmt.Fprintln(c.Stdio.Out, v)
				} else {
					fmt.Fprintf(c.Stdio.Out, "%s=%s\n", n, v)
				}
			}
		}
		return 0
	case "list-users":
		seen := map[string]bool{self: true}
		for _, u := range append(lingeringUsers(c.Machine, c.Domain), userManagers(c.Machine, c.Domain)...) {
			seen[u] = true
		}
		fmt.Fprintf(c.Stdio.Out, " UID USER    LINGER STATE\n")
		names := make([]string, 0, len(seen))
		for u := range seen {
			names = append(names, u)
		}
		sort.Strings(names)
		for _, u := range names {
			fmt.Fprintf(c.Stdio.Out, "%4d %-7s %-6s active\n", uidOf(u), u, yesNo(lingers(c.Machine, c.Domain, u)))
		}
		fmt.Fprintf(c.Stdio.Out, "\n%d users listed.\n", len(seen))
		return 0
	}
	fmt.Fprintf(c.Stdio.Err, "Unknown command verb '%s'.\n", verb)
	return 1
}

func lingers(m *Machine, domain, user string) bool {
	_, err := os.Stat(m.Path(domain, lingerDir+"/"+user))
	return err == nil
}

// knownUser reports whether user exists in the domain: root, the default
// user, or a user with a home directory (the simulator has no passwd).
func knownUser(c *Call, user string) bool {
	if user == "root" || user == callerUser(c) {
		return true
	}
	if user == "" || strings.ContainsAny(user, "/") {
		return false
	}
	fi, err := os.Stat(c.Machine.Path(c.Domain, UserHome(user)))
	return err == nil && fi.IsDir()
}
