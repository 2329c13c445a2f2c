package sim

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Unit files are read from a domain's root the way systemd reads them
// (systemd.unit(5) "Unit File Load Path"): the first directory of the search
// path holding NAME wins, a template instance foo@bar.service falls back to
// foo@.service, and drop-ins NAME.d/*.conf from every directory are merged
// in file-name order (a file of a higher-priority directory shadows a file
// of the same name below it).

// unitSearchPath is the system manager's unit path (domain paths).
var unitSearchPath = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system"}

// userUnitSearchPath is the user manager's; "~" is the user's home.
var userUnitSearchPath = []string{"~/.config/systemd/user", "/etc/systemd/user", "/run/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user"}

// errUnitNotFound is a unit with no fragment in the search path.
var errUnitNotFound = errors.New("unit not found")

// condition is one Condition*= or Assert*= line.
type condition struct {
	Key     string `json:"key"` // e.g. ConditionPathExists
	Arg     string `json:"arg"`
	Trigger bool   `json:"trigger,omitempty"` // "|": at least one trigger must hold
	Negate  bool   `json:"negate,omitempty"`  // "!"
	Assert  bool   `json:"assert,omitempty"`  // Assert*: failing fails the start
}

func (c condition) String() string {
	kind := "Condition"
	if c.Assert {
		kind = "Assert"
	}
	s := kind + c.Key + "="
	if c.Trigger {
		s += "|"
	}
	if c.Negate {
		s += "!"
	}
	return s + c.Arg
}

// unit is a loaded unit: the merged settings of its fragment and drop-ins.
// It is stored as JSON in the manager's load cache (see loadUnit).
type unit struct {
	Name     string   `json:"name"`     // foo.service, foo@bar.service
	Fragment string   `json:"fragment"` // domain path of the unit file
	DropIns  []string `json:"dropins,omitempty"`
	// Fingerprint changes whenever the fragment or a drop-in changes.
	Fingerprint string `json:"fingerprint"`

	Description        string        `json:"description,omitempty"`
	After, Before      []string      `json:"-"`
	Wants, Requires    []string      `json:"-"`
	Conditions         []condition   `json:"conditions,omitempty"`
	StartLimitBurst    int           `json:"start_limit_burst"`
	StartLimitInterval time.Duration `json:"start_limit_interval"`

	Type             string        `json:"type"`
	ExecStartPre     []string      `json:"exec_start_pre,omitempty"`
	ExecStart        []string      `json:"exec_start,omitempty"`
	ExecStartPost    []string      `json:"exec_start_post,omitempty"`
	ExecStop         []string      `json:"exec_stop,omitempty"`
	ExecStopPost     []string      `json:"exec_stop_post,omitempty"`
	RemainAfterExit  bool          `json:"remain_after_exit,omitempty"`
	Environment      []string      `json:"environment,omitempty"`
	EnvironmentFiles []string      `json:"environment_files,omitempty"`
	User             string        `json:"user,omitempty"`
	Group            string        `json:"group,omitempty"`
	WorkingDirectory string        `json:"working_directory,omitempty"`
	Restart          string        `json:"restart"`
	RestartSec       time.Duration `json:"restart_sec"`
	RuntimeDirectory []string      `json:"runtime_directory,omitempty"`
	RuntimeDirMode   fs.FileMode   `json:"runtime_directory_mode"`
	TimeoutStartSec  time.Duration `json:"timeout_start_sec"`
	TimeoutStopSec   time.Duration `json:"timeout_stop_sec"`

	WantedBy   []string `json:"-"`
	RequiredBy []string `json:"-"`
	Alias      []string `json:"-"`
	Also       []string `json:"-"`

	// Deps keeps the dependency lists in the cache (the fields above are
	// tagged "-" to keep the JSON flat and readable).
	Deps map[string][]string `json:"deps,omitempty"`

	// Warnings are what systemd would log while loading (unknown keys, ...).
	Warnings []string `json:"warnings,omitempty"`
	// Bad is set when systemd would refuse the unit (bad-setting).
	Bad string `json:"bad,omitempty"`
}

// systemd's defaults (systemd-system.conf(5), systemd.service(5)).
const (
	defaultTimeout         = 90 * time.Second
	defaultRestartSec      = 100 * time.Millisecond
	defaultStartLimitBurst = 5
	defaultStartLimitIntvl = 10 * time.Second
)

func (u *unit) packDeps() {
	u.Deps = map[string][]string{}
	for k, v := range map[string][]string{"After": u.After, "Before": u.Before, "Wants": u.Wants, "Requires": u.Requires,
		"WantedBy": u.WantedBy, "RequiredBy": u.RequiredBy, "Alias": u.Alias, "Also": u.Also} {
		if len(v) > 0 {
			u.Deps[k] = v
		}
	}
}

func (u *unit) unpackDeps() {
	u.After, u.Before, u.Wants, u.Requires = u.Deps["After"], u.Deps["Before"], u.Deps["Wants"], u.Deps["Requires"]
	u.WantedBy, u.RequiredBy, u.Alias, u.Also = u.Deps["WantedBy"], u.Deps["RequiredBy"], u.Deps["Alias"], u.Deps["Also"]
}

// hasInstall reports whether the unit can be enabled (not "static").
func (u *unit) hasInstall() bool {
	return len(u.WantedBy)+len(u.RequiredBy)+len(u.Alias)+len(u.Also) > 0
}

// normalizeUnitName appends ".service" to a name without a unit type
// suffix, as systemctl does.
func normalizeUnitName(n string) string {
	for _, t := range unitTypes {
		if strings.HasSuffix(n, "."+t) {
			return n
		}
	}
	return n + ".service"
}

var unitTypes = []string{"service", "socket", "target", "timer", "path", "mount", "automount", "swap", "device", "slice", "scope"}

// validUnitName is systemd's unit_name_is_valid, roughly: a non-empty
// prefix of [A-Za-z0-9:_.\-@] (at most one '@'), then a known suffix.
func validUnitName(n string) bool {
	if len(n) > 255 || strings.Contains(n, "/") {
		return false
	}
	dot := strings.LastIndexByte(n, '.')
	if dot <= 0 {
		return false
	}
	for i := 0; i < dot; i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(":-_.\\@", c) >= 0) {
			return false
		}
	}
	return strings.Count(n[:dot], "@") <= 1
}

// splitInstance splits foo@bar.service into the template foo@.service and
// the instance bar; ok is false for a name that is not an instance.
func splitInstance(n string) (template, instance string, ok bool) {
	at := strings.IndexByte(n, '@')
	dot := strings.LastIndexByte(n, '.')
	if at < 0 || dot < at || at+1 == dot {
		return "", "", false
	}
	return n[:at+1] + n[dot:], n[at+1 : dot], true
}

// rawLine is one Key=Value assignment of a unit file.
type rawLine struct {
	section, key, value string
	where               string // file:line
}

// parseUnitFile reads an ini-style unit file: sections, comments (# ;),
// and lines continued with a trailing backslash.
func parseUnitFile(host, domainPath string) ([]rawLine, error) {
	f, err := os.Open(host)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []rawLine
	section := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	var cont strings.Builder
	contStart := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cont.Len() > 0 && (strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			if cont.Len() == 0 {
				contStart = n
			}
			cont.WriteString(strings.TrimSuffix(line, "\\"))
			cont.WriteByte(' ')
			continue
		}
		start := n
		if cont.Len() > 0 {
			cont.WriteString(line)
			line = strings.TrimSpace(cont.String())
			cont.Reset()
			start = contStart
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		where := fmt.Sprintf("%s:%d", domainPath, start)
		if !ok {
			out = append(out, rawLine{section: section, key: "", value: line, where: where})
			continue
		}
		out = append(out, rawLine{section: section, key: strings.TrimSpace(k), value: strings.TrimSpace(v), where: where})
	}
	return out, sc.Err()
}

// findUnit locates the fragment and drop-ins of name for manager g.
func (g *manager) findUnit(name string) (fragment string, dropins []string, err error) {
	names := []string{name}
	if t, _, ok := splitInstance(name); ok {
		names = append(names, t)
	}
	dirs := g.unitDirs()
	for _, n := range names {
		for _, d := range dirs {
			p := filepath.Join(d, n)
			dirHost, err := g.m.ResolveInRoot(g.domain, d)
			if err != nil {
				continue
			}
			// A link to /dev/null masks the unit (systemctl mask).
			if t, err := os.Readlink(filepath.Join(dirHost, n)); err == nil && t == "/dev/null" {
				return p, nil, errUnitMasked
			}
			host, err := g.m.ResolveInRoot(g.domain, p)
			if err != nil {
				continue
			}
			if fi, err := os.Stat(host); err == nil && fi.Mode().IsRegular() {
				fragment = p
				break
			}
		}
		if fragment != "" {
			break
		}
	}
	if fragment == "" {
		return "", nil, errUnitNotFound
	}
	// Drop-ins: NAME.d of the instance and of its template, every directory.
	byName := map[string]string{}
	for _, n := range names {
		for i := len(dirs) - 1; i >= 0; i-- {
			d := filepath.Join(dirs[i], n+".d")
			host, err := g.m.ResolveInRoot(g.domain, d)
			if err != nil {
				continue
			}
			ents, err := os.ReadDir(host)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if strings.HasSuffix(e.Name(), ".conf") {
					if _, seen := byName[e.Name()]; !seen || n == name {
						byName[e.Name()] = filepath.Join(d, e.Name())
					}
				}
			}
		}
	}
	// Lower-priority directories were visited first, so higher ones won.
	keys := make([]string, 0, len(byName))
	for k := range byName {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dropins = append(dropins, byName[k])
	}
	return fragment, dropins, nil
}

var errUnitMasked = errors.New("unit is masked")

// fingerprint identifies the content of the unit's files.
func (g *manager) fingerprint(files []string) string {
	// FNV, not SHA-256: it only detects edits, and crypto packages cost
	// every tool's start-up.
	h := fnv.New64a()
	for _, f := range files {
		host, _ := g.m.ResolveInRoot(g.domain, f)
		b, _ := os.ReadFile(host)
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// readUnit loads name from disk.
func (g *manager) readUnit(name string) (*unit, error) {
	fragment, dropins, err := g.findUnit(name)
	if err != nil {
		return nil, err
	}
	u := &unit{
		Name: name, Fragment: fragment, DropIns: dropins, Type: "simple", Restart: "no",
		RestartSec: defaultRestartSec, StartLimitBurst: defaultStartLimitBurst, StartLimitInterval: defaultStartLimitIntvl,
		TimeoutStartSec: defaultTimeout, TimeoutStopSec: defaultTimeout, RuntimeDirMode: 0o755,
	}
	u.Fingerprint = g.fingerprint(append([]string{fragment}, dropins...))
	var lines []rawLine
	for _, f := range append([]string{fragment}, dropins...) {
		host, err := g.m.ResolveInRoot(g.domain, f)
		if err != nil {
			return nil, err
		}
		ls, err := parseUnitFile(host, f)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", f, err)
		}
		lines = append(lines, ls...)
	}
	spec := g.specifiers(u)
	for _, l := range lines {
		if l.key == "" {
			u.Warnings = append(u.Warnings, fmt.Sprintf("%s: Missing '=', ignoring line.", l.where))
			continue
		}
		v := l.value
		if l.section != "Install" && !strings.HasPrefix(l.key, "Exec") {
			v = expandSpecifiers(v, spec)
		}
		if err := u.set(l.section, l.key, v); err != nil {
			u.Warnings = append(u.Warnings, fmt.Sprintf("%s: %v", l.where, err))
		}
	}
	switch u.Type {
	case "simple", "exec", "notify", "oneshot":
	case "idle", "dbus", "notify-reload":
		u.Warnings = append(u.Warnings, fmt.Sprintf("%s: Type=%s is run as Type=simple by the simulator.", fragment, u.Type))
	default:
		u.Bad = fmt.Sprintf("%s: Type=%s is not supported by the simulator.", fragment, u.Type)
	}
	if strings.HasSuffix(name, ".service") {
		// service_verify's checks, in its order.
		switch {
		case len(u.ExecStart) == 0 && len(u.ExecStop) == 0:
			u.Bad = "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."
		case len(u.ExecStart) == 0 && u.Type != "oneshot":
			u.Bad = "Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing."
		case len(u.ExecStart) > 1 && u.Type != "oneshot":
			u.Bad = "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing."
		case u.Type == "oneshot" && (u.Restart == "always" || u.Restart == "on-success"):
			u.Bad = "Service has Restart= set to either always or on-success, which isn't allowed for Type=oneshot services. Refusing."
		}
	}
	u.packDeps()
	return u, nil
}

// listKeys accumulate; an empty assignment resets them.
func appendList(dst *[]string, v string, split bool) {
	if v == "" {
		*dst = nil
		return
	}
	if split {
		*dst = append(*dst, strings.Fields(v)...)
		return
	}
	*dst = append(*dst, v)
}

// set applies one assignment; an error is a warning (the key is ignored).
func (u *unit) set(section, key, v string) error {
	switch section {
	case "Unit":
		switch key {
		case "Description":
			u.Description = v
		case "After":
			appendList(&u.After, v, true)
		case "Before":
			appendList(&u.Before, v, true)
		case "Wants":
			appendList(&u.Wants, v, true)
		case "Requires", "BindsTo", "BindTo", "Requisite":
			appendList(&u.Requires, v, true)
		case "RequiresOverridable", "RequisiteOverridable":
			appendList(&u.Requires, v, true)
			return fmt.Errorf("Unit dependency type %s is obsolete, replacing by %s, please update your unit file", key, strings.TrimSuffix(key, "Overridable"))
		case "StartLimitBurst":
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("Failed to parse %s=%s, ignoring: %v", key, v, err)
			}
			u.StartLimitBurst = n
		case "StartLimitIntervalSec", "StartLimitInterval":
			d, err := parseTimespan(v)
			if err != nil {
				return fmt.Errorf("Failed to parse %s=%s, ignoring: %v", key, v, err)
			}
			u.StartLimitInterval = d
		default:
			if c, ok := parseCondition(key, v); ok && systemdKnowsKey(section, key) {
				if v == "" {
					u.Conditions = nil
					return nil
				}
				if !knownCondition(c.Key) {
					return fmt.Errorf("%s is not evaluated by the simulator (treated as met)", key)
				}
				u.Conditions = append(u.Conditions, c)
				return nil
			}
			return unknownOrIgnored(section, key)
		}
	case "Service":
		switch key {
		case "Type":
			u.Type = v
		case "ExecStartPre":
			appendList(&u.ExecStartPre, v, false)
		case "ExecStart":
			appendList(&u.ExecStart, v, false)
		case "ExecStartPost":
			appendList(&u.ExecStartPost, v, false)
		case "ExecStop":
			appendList(&u.ExecStop, v, false)
		case "ExecStopPost":
			appendList(&u.ExecStopPost, v, false)
		case "RemainAfterExit":
			b, err := parseSystemdBool(v)
			if err != nil {
				return fmt.Errorf("Failed to parse boolean value, ignoring: %s", v)
			}
			u.RemainAfterExit = b
		case "Environment":
			if v == "" {
				u.Environment = nil
				return nil
			}
			words, err := splitQuoted(v)
			if err != nil {
				return fmt.Errorf("Invalid environment assignment, ignoring: %s", v)
			}
			for _, w := range words {
				if !strings.Contains(w, "=") {
					return fmt.Errorf("Invalid environment assignment, ignoring: %s", w)
				}
			}
			u.Environment = append(u.Environment, words...)
		case "EnvironmentFile":
			appendList(&u.EnvironmentFiles, v, false)
		case "User":
			u.User = v
		case "Group":
			u.Group = v
		case "WorkingDirectory":
			u.WorkingDirectory = v
		case "Restart":
			switch v {
			case "no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always":
				u.Restart = v
			default:
				return fmt.Errorf("Failed to parse service restart specifier, ignoring: %s", v)
			}
		case "RestartSec":
			d, err := parseTimespan(v)
			if err != nil {
				return fmt.Errorf("Failed to parse %s=%s, ignoring: %v", key, v, err)
			}
			u.RestartSec = d
		case "TimeoutSec", "TimeoutStartSec", "TimeoutStopSec":
			d, err := parseTimespan(v)
			if err != nil {
				return fmt.Errorf("Failed to parse %s=%s, ignoring: %v", key, v, err)
			}
			if key != "TimeoutStopSec" {
				u.TimeoutStartSec = d
			}
			if key != "TimeoutStartSec" {
				u.TimeoutStopSec = d
			}
		case "RuntimeDirectory":
			appendList(&u.RuntimeDirectory, v, true)
		case "RuntimeDirectoryMode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return fmt.Errorf("Failed to parse mode value, ignoring: %s", v)
			}
			u.RuntimeDirMode = fs.FileMode(m)
		case "StartLimitBurst", "StartLimitInterval":
			// Compatibility names in [Service]; the settings moved to [Unit]
			// (StartLimitIntervalSec never was a [Service] key).
			return u.set("Unit", key, v)
		default:
			return unknownOrIgnored(section, key)
		}
	case "Install":
		switch key {
		case "WantedBy":
			appendList(&u.WantedBy, v, true)
		case "RequiredBy", "UpheldBy":
			appendList(&u.RequiredBy, v, true)
		case "Alias":
			appendList(&u.Alias, v, true)
		case "Also":
			appendList(&u.Also, v, true)
		case "DefaultInstance":
		default:
			return unknownOrIgnored(section, key)
		}
	default:
		if strings.HasPrefix(section, "X-") {
			return nil
		}
		return fmt.Errorf("Unknown section '%s'. Ignoring.", section)
	}
	return nil
}

// unknownOrIgnored is the outcome of a key the simulator does not act on:
// nothing for a key systemd knows (systemd_keys.go), systemd's warning for
// a removed or an unknown one.
func unknownOrIgnored(section, key string) error {
	switch {
	case systemdLegacyKey(section, key):
		return fmt.Errorf("Support for option %s= has been removed and it is ignored", key)
	case systemdKnowsKey(section, key):
		return nil
	}
	return fmt.Errorf("Unknown key name '%s' in section '%s', ignoring.", key, section)
}

// knownCondition reports whether the simulator evaluates the Condition*/
// Assert* check named c (a switch, not a map: no start-up cost).
func knownCondition(c string) bool {
	switch c {
	case "PathExists", "PathExistsGlob", "PathIsDirectory", "PathIsSymbolicLink",
		"FileNotEmpty", "DirectoryNotEmpty", "FileIsExecutable", "KernelCommandLine",
		"User", "Host", "Virtualization":
		return true
	}
	return false
}

func parseCondition(key, v string) (condition, bool) {
	var c condition
	switch {
	case strings.HasPrefix(key, "Condition"):
		c.Key = strings.TrimPrefix(key, "Condition")
	case strings.HasPrefix(key, "Assert"):
		c.Key, c.Assert = strings.TrimPrefix(key, "Assert"), true
	default:
		return c, false
	}
	if strings.HasPrefix(v, "|") {
		c.Trigger, v = true, strings.TrimSpace(v[1:])
	}
	if strings.HasPrefix(v, "!") {
		c.Negate, v = true, strings.TrimSpace(v[1:])
	}
	c.Arg = v
	return c, true
}

func parseSystemdBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean %q", v)
}

// parseTimespan parses a systemd time span ("90", "5s", "1min 30s",
// "100ms", "infinity"); a bare number is seconds.
func parseTimespan(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "infinity" {
		return time.Duration(1<<63 - 1), nil
	}
	if v == "" {
		return 0, errors.New("empty time span")
	}
	units := []struct {
		suffix string
		d      time.Duration
	}{
		{"usec", time.Microsecond}, {"us", time.Microsecond}, {"µs", time.Microsecond},
		{"msec", time.Millisecond}, {"ms", time.Millisecond},
		{"seconds", time.Second}, {"second", time.Second}, {"sec", time.Second}, {"s", time.Second},
		{"minutes", time.Minute}, {"minute", time.Minute}, {"min", time.Minute}, {"m", time.Minute},
		{"hours", time.Hour}, {"hour", time.Hour}, {"hr", time.Hour}, {"h", time.Hour},
		{"days", 24 * time.Hour}, {"day", 24 * time.Hour}, {"d", 24 * time.Hour},
	}
	var total time.Duration
	rest := strings.ReplaceAll(v, " ", "")
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid time span %q", v)
		}
		num, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid time span %q", v)
		}
		rest = rest[i:]
		unit := time.Second
		for _, u := range units {
			if strings.HasPrefix(rest, u.suffix) {
				unit, rest = u.d, rest[len(u.suffix):]
				break
			}
		}
		if len(rest) > 0 && (rest[0] < '0' || rest[0] > '9') {
			return 0, fmt.Errorf("invalid time span %q", v)
		}
		total += time.Duration(num * float64(unit))
	}
	return total, nil
}

// splitQuoted splits a systemd value into words: whitespace separates,
// single and double quotes group, backslash escapes the next character.
func splitQuoted(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && i+1 < len(s) {
				i++
				cur.WriteByte(unescapeChar(s[i]))
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(unescapeChar(s[i]))
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced quotes in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

func unescapeChar(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return c
}

// specifiers returns the %-specifier table of u (systemd.unit(5)
// "Specifiers"). Paths are host paths, like $HOME in a domain (the
// simulator's processes see host paths; the config loader accepts paths
// already under the domain root).
func (g *manager) specifiers(u *unit) map[byte]string {
	name := u.Name
	prefix := strings.TrimSuffix(name, filepath.Ext(name))
	inst := ""
	if t, i, ok := splitInstance(name); ok {
		prefix = strings.TrimSuffix(strings.TrimSuffix(t, filepath.Ext(t)), "@")
		inst = i
	}
	user := g.user
	if user == "" {
		user = "root"
	}
	spec := map[byte]string{
		'n': name, 'N': strings.TrimSuffix(name, filepath.Ext(name)), 'p': prefix, 'P': unescapeUnit(prefix),
		'i': inst, 'I': unescapeUnit(inst), 'j': lastDash(prefix), 'u': user, 'U': strconv.Itoa(uidOf(user)),
		'h': g.m.Path(g.domain, UserHome(user)), 'H': g.domain, 'l': g.domain, 'f': "/" + unescapeUnit(inst),
		'%': "%",
	}
	if g.user == "" {
		spec['t'], spec['S'], spec['C'], spec['L'], spec['E'] = g.m.Path(g.domain, "/run"), g.m.Path(g.domain, "/var/lib"),
			g.m.Path(g.domain, "/var/cache"), g.m.Path(g.domain, "/var/log"), g.m.Path(g.domain, "/etc")
	} else {
		home := UserHome(g.user)
		spec['t'], spec['S'], spec['C'], spec['L'], spec['E'] = g.m.Path(g.domain, g.runtimeDir()), g.m.Path(g.domain, home+"/.local/state"),
			g.m.Path(g.domain, home+"/.cache"), g.m.Path(g.domain, home+"/.local/state/log"), g.m.Path(g.domain, home+"/.config")
	}
	return spec
}

func lastDash(s string) string {
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// unescapeUnit undoes systemd-escape: "-" is "/", "\xNN" a byte.
func unescapeUnit(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '-':
			b.WriteByte('/')
		case s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x':
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// expandSpecifiers replaces %X; an unknown specifier is left as is.
func expandSpecifiers(s string, spec map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+1 < len(s) {
			if v, ok := spec[s[i+1]]; ok {
				b.WriteString(v)
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// uidOf is the uid the simulator reports for user (Fedora's first user is
// 1000; the simulator has no passwd database).
func uidOf(user string) int {
	if user == "root" {
		return 0
	}
	return 1000
}
