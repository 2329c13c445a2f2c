package sim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// systemdTools are systemctl, loginctl and journalctl as the project uses
// them, plus `systemd`, whose only mode is the per-unit runner that start
// jobs spawn (systemd_runner.go).
var systemdTools = map[string]tool{
	"systemctl":  systemctl,
	"loginctl":   loginctl,
	"journalctl": journalctl,
	"systemd":    systemdTool,
}

// Exit statuses of systemctl (LSB, systemctl(1) "EXIT STATUS").
const (
	sdExitFailure     = 1
	sdExitNotRunning  = 3
	sdExitNoSuchUnit  = 4 // status
	sdExitNotInstalld = 5 // start/stop of a unit that cannot be loaded
)

// systemdTool is the hidden runner mode; systemd itself is PID 1 and is
// never run by hand.
func systemdTool(c *Call) int {
	a := c.Args
	if len(a) >= 2 && a[0] == "--sim-run" {
		user := ""
		if a[1] == "--user" && len(a) == 4 {
			user, a = a[2], a[2:]
		}
		if len(a) == 2 && validUnitName(a[1]) {
			return runUnit(c, user, a[1])
		}
	}
	if len(a) == 2 && a[0] == "--sim-user-manager" && a[1] != "" {
		return runUserManager(c, a[1])
	}
	return c.Errorf(1, "this is the simulator's service manager; use systemctl")
}

// sdOpts are the systemctl options the simulator understands.
type sdOpts struct {
	user, now, quiet, noBlock, value, all bool
	// machine is --machine/-M [USER@]HOST; hasMachine tells "" from unset.
	machine    string
	hasMachine bool
	props      []string
	signal     string
}

// callerUser is the user a tool runs as: $USER when it is a user of the
// domain, else the domain's default user (a test running tools directly
// carries its host $USER).
func callerUser(c *Call) string {
	u := os.Getenv("USER")
	if u == "root" {
		return u
	}
	if u != "" {
		if fi, err := os.Stat(c.Machine.Path(c.Domain, UserHome(u))); err == nil && fi.IsDir() {
			return u
		}
	}
	st, err := c.Machine.Load()
	if err != nil {
		return "user"
	}
	return defaultUser(st, st.Domain(c.Domain))
}

func systemctl(c *Call) int {
	var o sdOpts
	var pos []string
	args := c.Args
	for i := 0; i < len(args); i++ {
		a := args[i]
		val := func() (string, bool) {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				return v, true
			}
			if len(a) > 2 && a[0] == '-' && a[1] != '-' {
				return a[2:], true
			}
			if i+1 < len(args) {
				i++
				return args[i], true
			}
			return "", false
		}
		name, _, _ := strings.Cut(a, "=")
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case a == "--user":
			o.user = true
		case a == "--system":
			o.user = false
		case a == "--now":
			o.now = true
		case a == "-q" || a == "--quiet":
			o.quiet = true
		case a == "--no-block":
			o.noBlock = true
		case a == "--value":
			o.value = true
		case a == "-a" || a == "--all":
			o.all = true
		case a == "--no-pager" || a == "--no-legend" || a == "-l" || a == "--full" || a == "--no-ask-password" ||
			a == "--plain" || a == "-f" || a == "--force" || a == "--no-reload":
		case name == "-p" || strings.HasPrefix(a, "-p") || name == "--property":
			v, ok := val()
			if !ok {
				return c.Errorf(1, "option requires an argument -- 'p'")
			}
			o.props = append(o.props, strings.Split(v, ",")...)
		case name == "-s" || strings.HasPrefix(a, "-s") || name == "--signal":
			v, ok := val()
			if !ok {
				return c.Errorf(1, "option requires an argument -- 's'")
			}
			o.signal = v
		case name == "-M" || strings.HasPrefix(a, "-M") || name == "--machine":
			v, ok := val()
			if !ok {
				return c.Errorf(1, "option requires an argument -- 'M'")
			}
			o.machine, o.hasMachine = v, true
		case name == "-t" || name == "--type" || name == "--state" || name == "-n" || name == "--lines" || name == "-o" || name == "--output":
			if _, ok := val(); !ok {
				return c.Errorf(1, "option '%s' requires an argument", a)
			}
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprintf(c.Stdio.Err, "%s: unrecognized option '%s'\n", c.Name, a)
			return sdExitFailure
		default:
			pos = append(pos, a)
		}
	}
	verb := "list-units"
	if len(pos) > 0 {
		verb, pos = pos[0], pos[1:]
	}
	g := systemManager(c.Machine, c.Domain)
	if o.hasMachine {
		var code int
		if g, code = machineManager(c, o); g == nil {
			return code
		}
	} else if o.user {
		g = userManager(c.Machine, c.Domain, callerUser(c))
		// systemctl --user talks to the user manager of the caller's session.
		if err := g.ensureUserManager(g.spawner(), true); err != nil {
			fmt.Fprintf(c.Stdio.Err, "Failed to connect to user scope bus: %v\n", err)
			return sdExitFailure
		}
	}
	units := make([]string, len(pos))
	for i, p := range pos {
		units[i] = normalizeUnitName(p)
	}
	needUnits := func() bool {
		if len(units) == 0 {
			fmt.Fprintf(c.Stdio.Err, "Too few arguments.\n")
			return false
		}
		return true
	}
	switch verb {
	case "start", "stop", "restart", "try-restart", "reload-or-restart", "enable", "disable", "reenable",
		"is-active", "is-failed", "is-enabled", "status", "mask", "unmask", "reset-failed", "cat", "kill":
		if verb != "status" && verb != "reset-failed" && !needUnits() {
			return sdExitFailure
		}
		for _, u := range units {
			if !validUnitName(u) {
				fmt.Fprintf(c.Stdio.Err, "Failed to mangle unit name: Invalid argument\n")
				return sdExitFailure
			}
		}
	}
	switch verb {
	case "start":
		return sdStart(c, g, units, o)
	case "stop":
		return sdStop(c, g, units, o)
	case "restart", "reload-or-restart":
		return sdRestart(c, g, units, o, false)
	case "try-restart":
		return sdRestart(c, g, units, o, true)
	case "is-active", "is-failed":
		return sdIsActive(c, g, units, o, verb == "is-failed")
	case "is-enabled":
		return sdIsEnabled(c, g, units, o)
	case "enable", "reenable":
		if verb == "reenable" {
			if code := sdDisable(c, g, units, sdOpts{}); code != 0 {
				return code
			}
		}
		return sdEnable(c, g, units, o)
	case "disable":
		return sdDisable(c, g, units, o)
	case "mask", "unmask":
		return sdMask(c, g, units, verb == "mask")
	case "daemon-reload", "daemon-reexec":
		if err := g.daemonReload(); err != nil {
			return c.Errorf(sdExitFailure, "Failed to reload daemon: %v", err)
		}
		return 0
	case "reset-failed":
		return sdResetFailed(c, g, units)
	case "status":
		return sdStatus(c, g, units)
	case "show":
		return sdShow(c, g, units, o)
	case "cat":
		return sdCat(c, g, units)
	case "kill":
		return sdKill(c, g, units, o)
	case "list-units":
		return sdListUnits(c, g, o)
	case "is-system-running":
		if !o.quiet {
			fmt.Fprintln(c.Stdio.Out, "running")
		}
		return 0
	}
	fmt.Fprintf(c.Stdio.Err, "Unknown command verb '%s'.\n", verb)
	return sdExitFailure
}

// machineManager is the manager --machine names. Only the local host is
// reachable ("", ".host"; the simulator runs no containers). With --user,
// USER@ is the user manager of USER, which root (or USER itself) reaches
// through the machine transport without a session of its own: unlike plain
// --user, it opens none, so the manager must already be running (linger, or
// a session of USER). Without --user, USER@ only names who connects to the
// system manager.
func machineManager(c *Call, o sdOpts) (*manager, int) {
	who, host, hasAt := strings.Cut(o.machine, "@")
	if !hasAt {
		who, host = "", o.machine
	}
	scope := "system"
	if o.user {
		scope = "user"
	}
	if host != "" && host != ".host" {
		fmt.Fprintf(c.Stdio.Err, "Failed to connect to %s scope bus via machine transport: Host is down\n", scope)
		return nil, sdExitFailure
	}
	if !o.user {
		return systemManager(c.Machine, c.Domain), 0
	}
	self := callerUser(c)
	if who == "" {
		who = self
	}
	if !knownUser(c, who) {
		fmt.Fprintf(c.Stdio.Err, "Failed to connect to user scope bus via machine transport: No such process\n")
		return nil, sdExitFailure
	}
	if who != self && self != "root" {
		fmt.Fprintf(c.Stdio.Err, "Failed to connect to user scope bus via machine transport: Permission denied\n")
		return nil, sdExitFailure
	}
	g := userManager(c.Machine, c.Domain, who)
	if !g.userManagerUp() {
		fmt.Fprintf(c.Stdio.Err, "Failed to connect to user scope bus via machine transport: No such file or directory\n")
		return nil, sdExitFailure
	}
	return g, 0
}

// printChangedWarning is systemctl's note about a stale loaded unit.
func printChangedWarning(c *Call, g *manager, name string) {
	if _, changed, err := g.loadUnit(name); err == nil && changed {
		fmt.Fprintf(c.Stdio.Err, "Warning: The unit file, source configuration file or drop-ins of %s changed on disk. Run 'systemctl %sdaemon-reload' to reload units.\n", name, g.flag())
	}
}

// jobFailure prints what systemctl prints for a failed start job.
func jobFailure(c *Call, g *manager, verb string, err error) int {
	var ue *unitError
	if errors.As(err, &ue) {
		switch {
		case errors.Is(err, errUnitNotFound):
			fmt.Fprintf(c.Stdio.Err, "Failed to %s %s: Unit %s not found.\n", verb, ue.unit, ue.unit)
			return sdExitNotInstalld
		case errors.Is(err, errUnitMasked):
			fmt.Fprintf(c.Stdio.Err, "Failed to %s %s: Unit %s is masked.\n", verb, ue.unit, ue.unit)
		case errors.Is(err, errBadSetting):
			fmt.Fprintf(c.Stdio.Err, "Failed to %s %s: Unit %s has a bad unit file setting.\nSee system logs and 'systemctl %sstatus %s' for details.\n", verb, ue.unit, ue.unit, g.flag(), ue.unit)
		default:
			fmt.Fprintf(c.Stdio.Err, "Failed to %s %s: %v\n", verb, ue.unit, ue.err)
		}
		return sdExitFailure
	}
	var je *jobError
	if errors.As(err, &je) {
		switch je.result {
		case "dependency":
			fmt.Fprintf(c.Stdio.Err, "A dependency job for %s failed. See 'journalctl -xe' for details.\n", je.unit)
		case "assert":
			fmt.Fprintf(c.Stdio.Err, "Assertion failed on job for %s.\n", je.unit)
		case "canceled":
			fmt.Fprintf(c.Stdio.Err, "Job for %s canceled.\n", je.unit)
		default:
			why := map[string]string{
				"exit-code":       "the control process exited with error code",
				"signal":          "a fatal signal was delivered to the control process",
				"timeout":         "a timeout was exceeded",
				"start-limit-hit": "start of the service was attempted too often",
				"protocol":        "the service did not take the steps required by its unit configuration",
				"resources":       "of unavailable resources or another system error",
			}[je.result]
			if why == "" {
				why = "the control process exited with error code"
			}
			fmt.Fprintf(c.Stdio.Err, "Job for %s failed because %s.\nSee \"systemctl %sstatus %s\" and \"journalctl %s-xeu %s\" for details.\n",
				je.unit, why, g.flag(), je.unit, g.flag(), je.unit)
		}
		return sdExitFailure
	}
	fmt.Fprintf(c.Stdio.Err, "Failed to %s units: %v\n", verb, err)
	return sdExitFailure
}

func sdStart(c *Call, g *manager, units []string, o sdOpts) int {
	code := 0
	for _, u := range units {
		printChangedWarning(c, g, u)
		if err := g.startUnit(u, g.spawner(), map[string]bool{}); err != nil {
			if rc := jobFailure(c, g, "start", err); code == 0 {
				code = rc
			}
		}
	}
	return code
}

// loadable reports whether systemd could load name (stop, restart and kill
// of a unit it cannot load fail).
func loadable(c *Call, g *manager, verb, name string) (int, bool) {
	if _, _, err := g.findUnit(name); err != nil && !errors.Is(err, errUnitMasked) && !g.runnerAlive(name) {
		fmt.Fprintf(c.Stdio.Err, "Failed to %s %s: Unit %s not loaded.\n", verb, name, name)
		return sdExitNotInstalld, false
	}
	return 0, true
}

func sdStop(c *Call, g *manager, units []string, o sdOpts) int {
	code := 0
	for _, u := range units {
		if rc, ok := loadable(c, g, "stop", u); !ok {
			code = rc
			continue
		}
		printChangedWarning(c, g, u)
		if err := g.stopUnit(u); err != nil {
			code = c.Errorf(sdExitFailure, "Failed to stop %s: %v", u, err)
		}
	}
	return code
}

func sdRestart(c *Call, g *manager, units []string, o sdOpts, onlyIfActive bool) int {
	code := 0
	for _, u := range units {
		if onlyIfActive && !g.runnerAlive(u) {
			continue
		}
		if _, _, err := g.findUnit(u); errors.Is(err, errUnitNotFound) {
			fmt.Fprintf(c.Stdio.Err, "Failed to restart %s: Unit %s not found.\n", u, u)
			code = sdExitNotInstalld
			continue
		}
		printChangedWarning(c, g, u)
		if err := g.stopUnit(u); err != nil {
			code = c.Errorf(sdExitFailure, "Failed to restart %s: %v", u, err)
			continue
		}
		if err := g.startUnit(u, g.spawner(), map[string]bool{}); err != nil {
			if rc := jobFailure(c, g, "restart", err); code == 0 {
				code = rc
			}
		}
	}
	return code
}

// activeState is ActiveState of a unit; targets reached at boot are active.
func (g *manager) activeState(name string) string {
	if strings.HasSuffix(name, ".target") {
		for _, t := range g.bootTargets() {
			if t == name || name == "default.target" {
				return "active"
			}
		}
		return "inactive"
	}
	return g.currentState(name).ActiveState
}

func sdIsActive(c *Call, g *manager, units []string, o sdOpts, failed bool) int {
	code := sdExitNotRunning
	if failed {
		code = sdExitFailure
	}
	for _, u := range units {
		s := g.activeState(u)
		if !o.quiet {
			fmt.Fprintln(c.Stdio.Out, s)
		}
		if (!failed && s == "active") || (failed && s == "failed") {
			code = 0
		}
	}
	return code
}

// unitFileState is is-enabled's answer for name.
func (g *manager) unitFileState(name string) (string, error) {
	frag, _, err := g.findUnit(name)
	if errors.Is(err, errUnitMasked) {
		return "masked", nil
	}
	if err != nil {
		return "", err
	}
	if g.enabled(name) {
		return "enabled", nil
	}
	if filepath.Base(frag) != name {
		if _, _, ok := splitInstance(name); !ok {
			return "alias", nil
		}
	}
	u, err := g.readUnit(name)
	if err != nil {
		return "", err
	}
	if !u.hasInstall() {
		return "static", nil
	}
	return "disabled", nil
}

func sdIsEnabled(c *Call, g *manager, units []string, o sdOpts) int {
	code := sdExitFailure
	for _, u := range units {
		s, err := g.unitFileState(u)
		if err != nil {
			fmt.Fprintf(c.Stdio.Err, "Failed to get unit file state for %s: No such file or directory\n", u)
			return sdExitFailure
		}
		if !o.quiet {
			fmt.Fprintln(c.Stdio.Out, s)
		}
		switch s {
		case "enabled", "static", "alias", "indirect", "generated", "enabled-runtime":
			code = 0
		}
	}
	return code
}

// link creates link -> target (domain paths) as enable does, reporting it.
func (g *manager) link(c *Call, link, target string) error {
	host := g.m.Path(g.domain, link)
	if t, err := os.Readlink(host); err == nil && t == target {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		return err
	}
	os.Remove(host)
	if err := os.Symlink(target, host); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdio.Err, "Created symlink '%s' → '%s'.\n", link, target)
	return nil
}

func sdEnable(c *Call, g *manager, units []string, o sdOpts) int {
	seen := map[string]bool{}
	var enable func(name string) int
	enable = func(name string) int {
		if seen[name] {
			return 0
		}
		seen[name] = true
		u, err := g.readUnit(name)
		if errors.Is(err, errUnitMasked) {
			fmt.Fprintf(c.Stdio.Err, "Failed to enable unit: Unit file %s is masked.\n", g.configDir()+"/"+name)
			return sdExitFailure
		}
		if err != nil {
			fmt.Fprintf(c.Stdio.Err, "Failed to enable unit: Unit file %s does not exist.\n", name)
			return sdExitFailure
		}
		if !u.hasInstall() {
			fmt.Fprint(c.Stdio.Err, staticUnitMessage)
			return 0
		}
		for _, kind := range []struct {
			list   []string
			suffix string
		}{{u.WantedBy, ".wants"}, {u.RequiredBy, ".requires"}} {
			for _, t := range kind.list {
				if err := g.link(c, filepath.Join(g.configDir(), t+kind.suffix, name), u.Fragment); err != nil {
					return c.Errorf(sdExitFailure, "Failed to enable unit: %v", err)
				}
			}
		}
		for _, a := range u.Alias {
			if err := g.link(c, filepath.Join(g.configDir(), a), u.Fragment); err != nil {
				return c.Errorf(sdExitFailure, "Failed to enable unit: %v", err)
			}
		}
		for _, also := range u.Also {
			if code := enable(normalizeUnitName(also)); code != 0 {
				return code
			}
		}
		return 0
	}
	for _, u := range units {
		if code := enable(u); code != 0 {
			return code
		}
	}
	// enable reloads the manager (systemctl(1)).
	g.daemonReload()
	if o.now {
		return sdStart(c, g, units, o)
	}
	return 0
}

const staticUnitMessage = `The unit files have no installation config (WantedBy=, RequiredBy=, UpheldBy=,
Also=, or Alias= settings in the [Install] section, and DefaultInstance= for
template units). This means they are not meant to be enabled or disabled using systemctl.
`

func sdDisable(c *Call, g *manager, units []string, o sdOpts) int {
	for _, name := range units {
		frag, _, err := g.findUnit(name)
		if err != nil && !errors.Is(err, errUnitMasked) {
			fmt.Fprintf(c.Stdio.Err, "Failed to disable unit: Unit file %s does not exist.\n", name)
			return sdExitFailure
		}
		// Only the configuration directory is changed; vendor links in
		// /usr/lib stay, as with systemctl disable.
		cfg := g.configDir()
		host := g.m.Path(g.domain, cfg)
		ents, _ := os.ReadDir(host)
		var removed []string
		for _, e := range ents {
			p := filepath.Join(host, e.Name())
			switch {
			case e.IsDir() && (strings.HasSuffix(e.Name(), ".wants") || strings.HasSuffix(e.Name(), ".requires")):
				if _, err := os.Lstat(filepath.Join(p, name)); err == nil {
					removed = append(removed, filepath.Join(cfg, e.Name(), name))
				}
			case e.Type()&os.ModeSymlink != 0 && e.Name() != name:
				if t, err := os.Readlink(p); err == nil && t == frag {
					removed = append(removed, filepath.Join(cfg, e.Name()))
				}
			}
		}
		sort.Strings(removed)
		for _, r := range removed {
			if err := os.Remove(g.m.Path(g.domain, r)); err != nil {
				return c.Errorf(sdExitFailure, "Failed to disable unit: %v", err)
			}
			fmt.Fprintf(c.Stdio.Err, "Removed '%s'.\n", r)
		}
	}
	g.daemonReload()
	if o.now {
		return sdStop(c, g, units, o)
	}
	return 0
}

func sdMask(c *Call, g *manager, units []string, mask bool) int {
	for _, name := range units {
		link := filepath.Join(g.configDir(), name)
		host := g.m.Path(g.domain, link)
		if mask {
			if fi, err := os.Lstat(host); err == nil && fi.Mode().IsRegular() {
				return c.Errorf(sdExitFailure, "Failed to mask unit: File %s already exists.", link)
			}
			if err := g.link(c, link, "/dev/null"); err != nil {
				return c.Errorf(sdExitFailure, "Failed to mask unit: %v", err)
			}
			continue
		}
		if t, err := os.Readlink(host); err == nil && t == "/dev/null" {
			os.Remove(host)
			fmt.Fprintf(c.Stdio.Err, "Removed '%s'.\n", link)
		}
	}
	g.daemonReload()
	return 0
}

func sdResetFailed(c *Call, g *manager, units []string) int {
	if len(units) == 0 {
		ents, _ := os.ReadDir(g.hostState(""))
		for _, e := range ents {
			if n, ok := strings.CutSuffix(e.Name(), ".state"); ok {
				units = append(units, n)
			}
		}
	}
	for _, u := range units {
		if st := g.currentState(u); st.ActiveState == "failed" && !g.runnerAlive(u) {
			n := inactiveState()
			n.NRestarts = 0
			g.writeState(u, n)
		}
	}
	return 0
}

func sdKill(c *Call, g *manager, units []string, o sdOpts) int {
	sig := "TERM"
	if o.signal != "" {
		sig = strings.TrimPrefix(strings.ToUpper(o.signal), "SIG")
	}
	num := 0
	for n := 1; n < 65; n++ {
		if sigName(n) == sig || strconv.Itoa(n) == sig {
			num = n
		}
	}
	if num == 0 {
		return c.Errorf(sdExitFailure, "Failed to parse signal string %s.", o.signal)
	}
	for _, u := range units {
		st := g.currentState(u)
		if st.MainPID == 0 {
			fmt.Fprintf(c.Stdio.Err, "Failed to kill unit %s: No main process to kill\n", u)
			return sdExitFailure
		}
		signalGroup(st.MainPID, syscallSignal(num))
	}
	return 0
}

// showProps are the properties show prints without -p, in its order.
var showProps = []string{"Type", "Restart", "MainPID", "NRestarts", "ExecMainStatus", "Result", "User", "Id", "Description",
	"LoadState", "ActiveState", "SubState", "FragmentPath", "DropInPaths", "UnitFileState", "StatusText", "InvocationID",
	"ConditionResult", "NeedDaemonReload", "ActiveEnterTimestamp", "StateChangeTimestamp"}

// properties returns show's properties of name.
func (g *manager) properties(name string) map[string]string {
	p := map[string]string{"Id": name, "LoadState": "loaded"}
	u, changed, err := g.loadUnit(name)
	switch {
	case errors.Is(err, errUnitMasked):
		p["LoadState"] = "masked"
	case err != nil:
		p["LoadState"] = "not-found"
	case u.Bad != "":
		p["LoadState"] = "bad-setting"
	}
	st := g.currentState(name)
	p["ActiveState"], p["SubState"], p["Result"] = g.activeState(name), st.SubState, st.Result
	p["MainPID"] = strconv.Itoa(st.MainPID)
	p["NRestarts"] = strconv.Itoa(st.NRestarts)
	p["ExecMainStatus"] = strconv.Itoa(st.ExecMainStatus)
	p["StatusText"] = st.StatusText
	p["InvocationID"] = st.InvocationID
	p["ConditionResult"] = yesNo(st.ConditionResult)
	p["NeedDaemonReload"] = yesNo(changed)
	p["ActiveEnterTimestamp"] = showTime(st.ActiveEnter)
	p["StateChangeTimestamp"] = showTime(st.Since)
	if s, err := g.unitFileState(name); err == nil {
		p["UnitFileState"] = s
	}
	if u != nil {
		p["Type"], p["Restart"], p["User"], p["Description"] = u.Type, u.Restart, u.User, u.Description
		p["FragmentPath"] = u.Fragment
		p["DropInPaths"] = strings.Join(u.DropIns, " ")
		p["RestartUSec"] = formatSpan(u.RestartSec)
		p["TimeoutStopUSec"] = formatSpan(u.TimeoutStopSec)
		p["WantedBy"] = strings.Join(u.WantedBy, " ")
		p["After"] = strings.Join(u.After, " ")
		p["Group"] = u.Group
		p["WorkingDirectory"] = u.WorkingDirectory
		p["Environment"] = strings.Join(u.Environment, " ")
		p["RemainAfterExit"] = yesNo(u.RemainAfterExit)
	}
	if p["Description"] == "" {
		p["Description"] = name
	}
	return p
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("Mon 2006-01-02 15:04:05 MST")
}

func formatSpan(d time.Duration) string {
	if d >= time.Duration(1<<63-1) {
		return "infinity"
	}
	return d.String()
}

func sdShow(c *Call, g *manager, units []string, o sdOpts) int {
	for i, u := range units {
		if i > 0 && !o.value {
			fmt.Fprintln(c.Stdio.Out)
		}
		p := g.properties(u)
		names := o.props
		if len(names) == 0 {
			names = showProps
		}
		for _, n := range names {
			v, ok := p[n]
			if !ok && len(o.props) > 0 {
				// systemctl prints an unknown property only with --all.
				if !o.all {
					continue
				}
			}
			if o.value {
				fmt.Fprintln(c.Stdio.Out, v)
			} else {
				fmt.Fprintf(c.Stdio.Out, "%s=%s\n", n, v)
			}
		}
	}
	return 0
}

func sdStatus(c *Call, g *manager, units []string) int {
	if len(units) == 0 {
		fmt.Fprintf(c.Stdio.Out, "● %s\n    State: running\n", c.Domain)
		return 0
	}
	code := 0
	for i, name := range units {
		if i > 0 {
			fmt.Fprintln(c.Stdio.Out)
		}
		u, _, err := g.loadUnit(name)
		if errors.Is(err, errUnitNotFound) && !g.runnerAlive(name) {
			fmt.Fprintf(c.Stdio.Err, "Unit %s could not be found.\n", name)
			code = sdExitNoSuchUnit
			continue
		}
		printChangedWarning(c, g, name)
		st := g.currentState(name)
		bullet := map[string]string{"active": "●", "failed": "×", "inactive": "○"}[st.ActiveState]
		if bullet == "" {
			bullet = "●"
		}
		w := c.Stdio.Out
		desc := name
		if u != nil {
			desc = g.describe(u)
		}
		fmt.Fprintf(w, "%s %s\n", bullet, desc)
		if u != nil {
			fs, _ := g.unitFileState(name)
			fmt.Fprintf(w, "     Loaded: loaded (%s; %s; preset: disabled)\n", u.Fragment, fs)
			if len(u.DropIns) > 0 {
				dirs := map[string][]string{}
				var order []string
				for _, d := range u.DropIns {
					dir := filepath.Dir(d)
					if _, ok := dirs[dir]; !ok {
						order = append(order, dir)
					}
					dirs[dir] = append(dirs[dir], filepath.Base(d))
				}
				for i, dir := range order {
					label := "    Drop-In:"
					if i > 0 {
						label = "            "
					}
					fmt.Fprintf(w, "%s %s\n             └─%s\n", label, dir, strings.Join(dirs[dir], ", "))
				}
			}
		} else {
			fmt.Fprintf(w, "     Loaded: masked (Reason: Unit %s is masked.)\n", name)
		}
		since := ""
		if !st.Since.IsZero() {
			since = fmt.Sprintf(" since %s; %s ago", showTime(st.Since), time.Since(st.Since).Round(time.Second))
		}
		switch st.ActiveState {
		case "failed":
			fmt.Fprintf(w, "     Active: failed (Result: %s)%s\n", st.Result, since)
		case "inactive":
			fmt.Fprintf(w, "     Active: inactive (dead)%s\n", since)
		default:
			fmt.Fprintf(w, "     Active: %s (%s)%s\n", st.ActiveState, st.SubState, since)
		}
		if !st.ConditionResult && st.ConditionFailed != "" {
			fmt.Fprintf(w, "  Condition: start condition unmet at %s; %s ago\n             └─ %s was not met\n",
				showTime(st.ConditionTime), time.Since(st.ConditionTime).Round(time.Second), st.ConditionFailed)
		}
		if st.MainPID > 0 {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(st.MainPID) + "/comm")
			fmt.Fprintf(w, "   Main PID: %d (%s)\n", st.MainPID, strings.TrimSpace(string(comm)))
		} else if st.ExecMainCode != "" {
			fmt.Fprintf(w, "   Main PID: (code=%s, status=%d)\n", st.ExecMainCode, st.ExecMainStatus)
		}
		if st.StatusText != "" {
			fmt.Fprintf(w, "     Status: \"%s\"\n", st.StatusText)
		}
		if lines := tailLines(g.journalPath(name), 10); len(lines) > 0 {
			fmt.Fprintln(w)
			for _, l := range lines {
				fmt.Fprintln(w, l)
			}
		}
		if st.ActiveState != "active" && code == 0 {
			code = sdExitNotRunning
		}
	}
	return code
}

func sdCat(c *Call, g *manager, units []string) int {
	for i, name := range units {
		frag, dropins, err := g.findUnit(name)
		if err != nil {
			fmt.Fprintf(c.Stdio.Err, "No files found for %s.\n", name)
			return sdExitFailure
		}
		if i > 0 {
			fmt.Fprintln(c.Stdio.Out)
		}
		for j, f := range append([]string{frag}, dropins...) {
			b, err := os.ReadFile(g.resolve(f))
			if err != nil {
				continue
			}
			if j > 0 {
				fmt.Fprintln(c.Stdio.Out)
			}
			fmt.Fprintf(c.Stdio.Out, "# %s\n%s", f, b)
		}
	}
	return 0
}

func sdListUnits(c *Call, g *manager, o sdOpts) int {
	ents, _ := os.ReadDir(g.hostState(""))
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".state"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	fmt.Fprintf(c.Stdio.Out, "  %-40s %-7s %-8s %-8s %s\n", "UNIT", "LOAD", "ACTIVE", "SUB", "DESCRIPTION")
	n := 0
	for _, name := range names {
		p := g.properties(name)
		if !o.all && p["ActiveState"] == "inactive" {
			continue
		}
		n++
		fmt.Fprintf(c.Stdio.Out, "  %-40s %-7s %-8s %-8s %s\n", name, p["LoadState"], p["ActiveState"], p["SubState"], p["Description"])
	}
	fmt.Fprintf(c.Stdio.Out, "\n%d loaded units listed.\n", n)
	return 0
}

// tailLines returns the last n lines of a file.
func tailLines(p string, n int) []string {
	b, err := os.ReadFile(p)
	if err != nil || len(b) == 0 {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if n >= 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// journalctl prints the simulated journal of units: -u/--unit UNIT (with
// --user, or --user-unit), -n/--lines N; other display options are accepted
// and ignored. Without a unit it prints every journal of the manager.
func journalctl(c *Call) int {
	user := false
	var units, userUnits []string
	n := -1
	args := c.Args
	for i := 0; i < len(args); i++ {
		a := args[i]
		k, v, hasV := strings.Cut(a, "=")
		next := func() (string, bool) {
			if hasV {
				return v, true
			}
			if len(a) > 2 && a[0] == '-' && a[1] != '-' {
				return a[2:], true
			}
			if i+1 < len(args) {
				i++
				return args[i], true
			}
			return "", false
		}
		switch {
		case a == "--user":
			user = true
		case k == "-u" || strings.HasPrefix(a, "-u") && !strings.HasPrefix(a, "--") || k == "--unit":
			x, ok := next()
			if !ok {
				return c.Errorf(1, "option requires an argument -- 'u'")
			}
			units = append(units, normalizeUnitName(x))
		case k == "--user-unit":
			x, ok := next()
			if !ok {
				return c.Errorf(1, "option '--user-unit' requires an argument")
			}
			userUnits = append(userUnits, normalizeUnitName(x))
		case k == "-n" || strings.HasPrefix(a, "-n") && !strings.HasPrefix(a, "--") || k == "--lines":
			x, ok := next()
			if !ok {
				return c.Errorf(1, "option requires an argument -- 'n'")
			}
			if x == "all" || x == "+all" {
				n = -1
			} else if v, err := strconv.Atoi(strings.TrimPrefix(x, "+")); err == nil {
				n = v
			} else {
				return c.Errorf(1, "Failed to parse lines '%s'", x)
			}
		case a == "-f" || a == "--follow":
			return c.Errorf(1, "--follow is not supported by the simulator")
		case k == "-o" || k == "--output" || k == "-b" || k == "--boot" && hasV || k == "--since" || k == "--until" || k == "-p" || k == "--priority":
			if !hasV && (k == "-o" || k == "--output" || k == "--since" || k == "--until" || k == "-p" || k == "--priority") {
				next()
			}
		case strings.HasPrefix(a, "-"):
			// -x, -e, --no-pager, -b, -q, ...: display options.
		}
	}
	var files []string
	sys := systemManager(c.Machine, c.Domain)
	usr := userManager(c.Machine, c.Domain, callerUser(c))
	for _, u := range units {
		if user {
			files = append(files, usr.journalPath(u))
		} else {
			files = append(files, sys.journalPath(u))
		}
	}
	for _, u := range userUnits {
		files = append(files, usr.journalPath(u))
	}
	if len(units)+len(userUnits) == 0 {
		dir := filepath.Dir(sys.journalPath("x"))
		if user {
			dir = filepath.Dir(usr.journalPath("x"))
		}
		matches, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		files = append(files, matches...)
	}
	var lines []string
	for _, f := range files {
		lines = append(lines, tailLines(f, -1)...)
	}
	if n >= 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		fmt.Fprintln(c.Stdio.Out, "-- No entries --")
		return 0
	}
	w := io.Writer(c.Stdio.Out)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return 0
}
