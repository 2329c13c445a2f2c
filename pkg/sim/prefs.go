package sim

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The property model follows qubes-core-admin (qubes/vm/qubesvm.py,
// qubes/vm/__init__.py, qubes/vm/mix/net.py, appvm.py, dispvm.py, adminvm.py,
// qubes/app.py): a property is either explicitly set (stored in Domain.Props or
// State.Global as the canonical string qvm-prefs prints) or absent, in which
// case its default is computed on every read. Defaults that Qubes inherits
// from the template ("TemplateBasedVMs use its template's value by default")
// read the template's effective value, so changing a template's memory changes
// every AppVM that did not set its own.

// ErrNoSuchProperty is returned for a property the domain (or the global
// property set) does not have; the tools report it as an argparse error.
var ErrNoSuchProperty = errors.New("no such property")

// ErrNoResponse mirrors qubesd failing with an unhandled exception (a
// write-once property, a malformed MAC): the client then only sees an empty
// response and prints this sentence.
var ErrNoResponse = errors.New("Got empty response from qubesd. See journalctl in dom0 for details.")

// PropError is a property value qubesd refused (QubesValueError and friends);
// its message is the exact text the real tools print after "error: ".
type PropError struct{ Msg string }

func (e *PropError) Error() string { return e.Msg }

func propErrorf(format string, a ...any) error { return &PropError{Msg: fmt.Sprintf(format, a...)} }

type propKind int

const (
	kindStr propKind = iota
	kindBool
	kindInt
	kindVM
	kindLabel
)

// propDef describes one property. Exactly one of computed (a value derived
// from the domain itself, never stored) or the stored/default pair applies.
type propDef struct {
	name string
	kind propKind
	// has reports whether a domain of class has the property.
	has func(class string) bool
	// computed derives identity and stateless values (name, qid, klass, ...).
	computed func(st *State, d *Domain) string
	// computedSet reports whether a computed value counts as explicitly set
	// (name/qid/uuid of a QubesVM) rather than default (klass, icon, dom0's).
	computedSet func(d *Domain) bool
	// writeOnce: set/reset fail inside qubesd with an unhandled exception.
	writeOnce bool
	// forbidden: the setter is qubes.property.forbidden; reset is a no-op.
	forbidden bool
	allowNone bool
	// def computes the default; nil means the property has no default.
	def func(st *State, d *Domain) (string, error)
	// check validates and canonicalises a value (after type sanitising).
	check func(st *State, d *Domain, p *propDef, v string) (string, error)
	// reset, if set, may refuse a reset (AppVM.template).
	reset func(st *State, d *Domain) error
}

func isQubesVM(class string) bool { return class != AdminVM }
func isAdminVM(class string) bool { return class == AdminVM }
func isAppVM(class string) bool   { return class == AppVM }
func isDispVM(class string) bool  { return class == DispVM }
func hasTemplate(class string) bool {
	return class == AppVM || class == DispVM
}
func anyClass(string) bool { return true }

// Defaults from qubes-core-admin qubes/config.py and qubes/app.py.
const (
	defaultMemory          = 400
	defaultMaxmem          = 4000
	defaultVCPUs           = 2
	defaultKernelopts      = "swiotlb=2048"
	defaultMAC             = "00:16:3e:5e:6c:00"
	defaultQrexecTimeout   = 60
	defaultShutdownTimeout = 60
)

// fromTemplate returns a default that uses the template's effective value when
// the domain has a template, else fallback.
func fromTemplate(prop string, fallback func(st *State, d *Domain) (string, error)) func(*State, *Domain) (string, error) {
	return func(st *State, d *Domain) (string, error) {
		if t := templateOf(st, d); t != nil {
			v, _, err := t.Prop(st, prop)
			if err == nil {
				return v, nil
			}
			if !errors.Is(err, ErrNoSuchProperty) {
				return "", err
			}
		}
		return fallback(st, d)
	}
}

func constant(v string) func(*State, *Domain) (string, error) {
	return func(*State, *Domain) (string, error) { return v, nil }
}

func global(name string) func(*State, *Domain) (string, error) {
	return func(st *State, _ *Domain) (string, error) {
		v, _, err := st.GlobalProp(name)
		return v, err
	}
}

// templateOf returns the domain's template, or nil for classes without one.
func templateOf(st *State, d *Domain) *Domain {
	if !hasTemplate(d.Class) {
		return nil
	}
	name := d.Props["template"]
	if name == "" {
		return nil
	}
	return st.Domain(name)
}

// domainProps and globalProps are built on first use: their defaults call
// Prop, which reads the tables (an initialisation cycle for a var
// initialiser), and building them at init would cost every tool call,
// most of which never look at a property.
var (
	propsOnce                          sync.Once
	domainPropsTable, globalPropsTable []*propDef
)

func domainProps() []*propDef { propsOnce.Do(buildProps); return domainPropsTable }
func globalProps() []*propDef { propsOnce.Do(buildProps); return globalPropsTable }

func buildProps() {
	domainPropsTable = []*propDef{
		{name: "audiovm", kind: kindVM, has: isQubesVM, allowNone: true, def: global("default_audiovm")},
		{name: "auto_cleanup", kind: kindBool, has: isDispVM, def: constant("False")},
		{name: "autostart", kind: kindBool, has: isQubesVM, def: constant("False")},
		{name: "debug", kind: kindBool, has: isQubesVM, def: constant("False")},
		{name: "default_dispvm", kind: kindVM, has: anyClass, allowNone: true, check: checkDispvmTemplate,
			def: func(st *State, d *Domain) (string, error) {
				if d.Class == DispVM {
					return d.Props["template"], nil
				}
				v, _, err := st.GlobalProp("default_dispvm")
				return v, err
			}},
		{name: "default_user", kind: kindStr, has: isQubesVM, check: checkDefaultUser,
			def: fromTemplate("default_user", constant("user"))},
		{name: "guivm", kind: kindVM, has: isQubesVM, allowNone: true, def: global("default_guivm")},
		{name: "icon", kind: kindStr, has: anyClass, forbidden: true, computed: icon},
		{name: "include_in_backups", kind: kindBool, has: anyClass,
			def: func(st *State, d *Domain) (string, error) {
				if d.Class == DispVM {
					ac, err := d.PropBool(st, "auto_cleanup")
					return boolString(!ac), err
				}
				return "True", nil
			}},
		{name: "installed_by_rpm", kind: kindBool, has: isQubesVM, def: constant("False")},
		{name: "kernel", kind: kindStr, has: isQubesVM, check: checkKernel,
			def: fromTemplate("kernel", global("default_kernel"))},
		{name: "kernelopts", kind: kindStr, has: isQubesVM, check: checkKernelopts,
			def: func(st *State, d *Domain) (string, error) {
				k, _, err := d.Prop(st, "kernel")
				if err != nil || k == "" {
					return "", err
				}
				return fromTemplate("kernelopts", constant(defaultKernelopts))(st, d)
			}},
		{name: "klass", kind: kindStr, has: anyClass, forbidden: true,
			computed: func(_ *State, d *Domain) string { return d.Class }},
		{name: "label", kind: kindLabel, has: anyClass, check: checkLabel},
		{name: "mac", kind: kindStr, has: isQubesVM, check: checkMAC, def: constant(defaultMAC)},
		{name: "management_dispvm", kind: kindVM, has: isQubesVM, allowNone: true, check: checkDispvmTemplate,
			def: fromTemplate("management_dispvm", global("management_dispvm"))},
		{name: "maxmem", kind: kindInt, has: isQubesVM, check: checkNonNegative,
			def: fromTemplate("maxmem", func(st *State, d *Domain) (string, error) {
				// Qubes caps Linux qubes at 10x their initial memory.
				if d.Features["os"] == "Linux" {
					m, err := d.PropInt(st, "memory")
					return strconv.Itoa(min(m*10, defaultMaxmem)), err
				}
				return strconv.Itoa(defaultMaxmem), nil
			})},
		{name: "memory", kind: kindInt, has: isQubesVM, check: checkPositive,
			def: fromTemplate("memory", constant(strconv.Itoa(defaultMemory)))},
		{name: "name", kind: kindStr, has: anyClass, writeOnce: true,
			computed:    func(_ *State, d *Domain) string { return d.Name },
			computedSet: func(d *Domain) bool { return d.Class != AdminVM }},
		{name: "netvm", kind: kindVM, has: isQubesVM, allowNone: true, check: checkNetVM,
			def: func(st *State, d *Domain) (string, error) {
				if d.Class == TemplateVM {
					return "", nil
				}
				v, _, err := st.GlobalProp("default_netvm")
				return v, err
			}},
		{name: "provides_network", kind: kindBool, has: isQubesVM, check: checkProvidesNetwork, def: constant("False")},
		{name: "qid", kind: kindInt, has: anyClass, writeOnce: true,
			computed:    func(_ *State, d *Domain) string { return strconv.Itoa(d.QID) },
			computedSet: func(d *Domain) bool { return d.Class != AdminVM }},
		{name: "qrexec_timeout", kind: kindInt, has: isQubesVM, check: checkPositive,
			def: fromTemplate("qrexec_timeout", global("default_qrexec_timeout"))},
		{name: "shutdown_timeout", kind: kindInt, has: isQubesVM, check: checkPositive,
			def: fromTemplate("shutdown_timeout", global("default_shutdown_timeout"))},
		{name: "template", kind: kindVM, has: hasTemplate, check: checkTemplate, reset: resetTemplate},
		{name: "template_for_dispvms", kind: kindBool, has: isAppVM, def: constant("False")},
		{name: "updateable", kind: kindBool, has: anyClass, forbidden: true,
			computed: func(_ *State, d *Domain) string { return boolString(!hasTemplate(d.Class)) }},
		{name: "uuid", kind: kindStr, has: anyClass, writeOnce: true,
			computed: func(_ *State, d *Domain) string {
				if d.Class == AdminVM && d.UUID == "" {
					return "00000000-0000-0000-0000-000000000000"
				}
				return d.UUID
			},
			computedSet: func(d *Domain) bool { return d.Class != AdminVM }},
		{name: "vcpus", kind: kindInt, has: isQubesVM, check: checkPositive,
			def: fromTemplate("vcpus", constant(strconv.Itoa(defaultVCPUs)))},
		{name: "virt_mode", kind: kindStr, has: isQubesVM, check: checkVirtMode,
			def: fromTemplate("virt_mode", constant("pvh"))},
	}

	// The global (qubes-prefs) properties the simulator models.
	globalPropsTable = []*propDef{
		{name: "default_audiovm", kind: kindVM, allowNone: true, def: constant(Dom0)},
		{name: "default_dispvm", kind: kindVM, allowNone: true, check: checkDispvmTemplate, def: constant("")},
		{name: "default_guivm", kind: kindVM, allowNone: true, def: constant(Dom0)},
		{name: "default_kernel", kind: kindStr, def: constant("")},
		{name: "default_netvm", kind: kindVM, allowNone: true, check: checkNetVM, def: constant("")},
		{name: "default_qrexec_timeout", kind: kindInt, def: constant(strconv.Itoa(defaultQrexecTimeout))},
		{name: "default_shutdown_timeout", kind: kindInt, def: constant(strconv.Itoa(defaultShutdownTimeout))},
		{name: "default_template", kind: kindVM, allowNone: true, check: checkIsTemplate, def: constant("")},
		{name: "management_dispvm", kind: kindVM, allowNone: true, check: checkDispvmTemplate, def: constant("")},
	}
}

func findProp(defs []*propDef, class, name string) *propDef {
	for _, p := range defs {
		if p.name == name && (p.has == nil || p.has(class)) {
			return p
		}
	}
	return nil
}

// PropNames lists the domain's property names, sorted as qvm-prefs lists them.
func (d *Domain) PropNames() []string {
	var out []string
	for _, p := range domainProps() {
		if p.has(d.Class) {
			out = append(out, p.name)
		}
	}
	sort.Strings(out)
	return out
}

// Prop returns the effective value of property name as qvm-prefs prints it
// (booleans True/False, a VM or label by name, "" for no VM) and whether it
// is the default. An unknown property gives an error wrapping
// ErrNoSuchProperty.
func (d *Domain) Prop(st *State, name string) (value string, isDefault bool, err error) {
	// Template chains are at most DispVM → AppVM → TemplateVM: the template
	// setters only accept those classes, so the recursion through defaults
	// cannot loop.
	p := findProp(domainProps(), d.Class, name)
	if p == nil {
		return "", false, fmt.Errorf("%w: %s", ErrNoSuchProperty, pyRepr(name))
	}
	if p.computed != nil {
		set := p.computedSet != nil && p.computedSet(d)
		return p.computed(st, d), !set, nil
	}
	if v, ok := d.Props[name]; ok {
		return v, false, nil
	}
	if p.def == nil {
		return "", true, nil
	}
	v, err := p.def(st, d)
	if err != nil {
		return "", true, fmt.Errorf("default of %s for %s: %w", name, d.Name, err)
	}
	return v, true, nil
}

// PropBool returns a boolean property.
func (d *Domain) PropBool(st *State, name string) (bool, error) {
	v, _, err := d.Prop(st, name)
	if err != nil {
		return false, err
	}
	switch v {
	case "True":
		return true, nil
	case "False":
		return false, nil
	}
	return false, fmt.Errorf("property %s of %s is not a boolean: %q", name, d.Name, v)
}

// PropInt returns an integer property.
func (d *Domain) PropInt(st *State, name string) (int, error) {
	v, _, err := d.Prop(st, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("property %s of %s is not an integer: %w", name, d.Name, err)
	}
	return n, nil
}

// SetProp sets property name from a command-line value the way
// admin.vm.property.Set does: type sanitising, then the property's setter.
// Refusals are *PropError (or ErrNoResponse); an unknown property wraps
// ErrNoSuchProperty. qvm-prefs' "none" → "" translation is the caller's job.
func (d *Domain) SetProp(st *State, name, value string) error {
	p := findProp(domainProps(), d.Class, name)
	if p == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchProperty, pyRepr(name))
	}
	v, err := sanitize(p, value)
	if err != nil {
		return err
	}
	if p.writeOnce && d.Class != AdminVM {
		return ErrNoResponse
	}
	if p.forbidden || p.writeOnce {
		return propErrorf("property %s on %s instance cannot be set", pyRepr(p.name), d.Class)
	}
	v, err = typeCheck(st, d, p, v)
	if err != nil {
		return err
	}
	if d.Props == nil {
		d.Props = map[string]string{}
	}
	d.Props[name] = v
	return nil
}

// ResetProp resets property name to its default (qvm-prefs -D).
func (d *Domain) ResetProp(st *State, name string) error {
	p := findProp(domainProps(), d.Class, name)
	if p == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchProperty, pyRepr(name))
	}
	if p.writeOnce && d.Class != AdminVM {
		return ErrNoResponse
	}
	if p.reset != nil {
		if err := p.reset(st, d); err != nil {
			return err
		}
	}
	// A forbidden or computed property has nothing stored: qubesd's reset
	// is then a successful no-op.
	delete(d.Props, name)
	return nil
}

// GlobalPropNames lists the modelled global properties, sorted.
func GlobalPropNames() []string {
	var out []string
	for _, p := range globalProps() {
		out = append(out, p.name)
	}
	sort.Strings(out)
	return out
}

// GlobalProp returns a global (qubes-prefs) property.
func (s *State) GlobalProp(name string) (value string, isDefault bool, err error) {
	p := findProp(globalProps(), "", name)
	if p == nil {
		return "", false, fmt.Errorf("%w: %s", ErrNoSuchProperty, pyRepr(name))
	}
	if v, ok := s.Global[name]; ok {
		return v, false, nil
	}
	v, err := p.def(s, nil)
	return v, true, err
}

// SetGlobalProp sets a global property (qubes-prefs NAME VALUE).
func (s *State) SetGlobalProp(name, value string) error {
	p := findProp(globalProps(), "", name)
	if p == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchProperty, pyRepr(name))
	}
	v, err := sanitize(p, value)
	if err != nil {
		return err
	}
	if v, err = typeCheck(s, nil, p, v); err != nil {
		return err
	}
	if s.Global == nil {
		s.Global = map[string]string{}
	}
	s.Global[name] = v
	return nil
}

// ResetGlobalProp resets a global property to its default.
func (s *State) ResetGlobalProp(name string) error {
	if findProp(globalProps(), "", name) == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchProperty, pyRepr(name))
	}
	delete(s.Global, name)
	return nil
}

// sanitize is qubes.property.sanitize: typed properties must parse, string
// ones must be printable ASCII.
func sanitize(p *propDef, v string) (string, error) {
	switch p.kind {
	case kindBool:
		b, err := parseQubesBool(v, "property")
		if err != nil {
			return "", err
		}
		return boolString(b), nil
	case kindInt:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return "", propErrorf("Failed to parse property value as int")
		}
		return strconv.Itoa(n), nil
	case kindVM:
		if v == "" {
			return "", nil
		}
		if err := validateName(v); err != nil {
			return "", err
		}
		return v, nil
	}
	for _, c := range []byte(v) {
		if c >= 0x80 {
			return "", propErrorf("Non-ASCII bytes in property value")
		}
		if (c < 0x20 || c == 0x7f) && !strings.ContainsRune("\t\n\r\x0b\x0c", rune(c)) {
			return "", propErrorf("Invalid characters in property value")
		}
	}
	return v, nil
}

// typeCheck applies the VMProperty rules (existence, class, none) and then
// the property's own setter.
func typeCheck(st *State, d *Domain, p *propDef, v string) (string, error) {
	if p.kind == kindVM {
		if v == "" {
			if !p.allowNone {
				return "", propErrorf("Invalid value None for property %s of %s", pyRepr(p.name), holderName(d))
			}
		} else if st.Domain(v) == nil {
			return "", propErrorf("Can't set %s to non-existing qube %s", p.name, v)
		}
	}
	if p.check != nil {
		return p.check(st, d, p, v)
	}
	return v, nil
}

func holderName(d *Domain) string {
	if d == nil {
		return "Qubes"
	}
	return d.Name
}

// parseQubesBool is qubes.property.bool; what names "property" or "value"
// as the two Qubes code paths do in their messages.
func parseQubesBool(v, what string) (bool, error) {
	switch strings.ToLower(v) {
	case "0", "no", "false", "off":
		return false, nil
	case "1", "yes", "true", "on":
		return true, nil
	}
	return false, propErrorf("Invalid literal for boolean %s: %s", what, pyRepr(v))
}

func boolString(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// pyRepr quotes s as Python's repr() does for plain strings.
func pyRepr(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

func checkPositive(_ *State, _ *Domain, p *propDef, v string) (string, error) {
	if n, _ := strconv.Atoi(v); n <= 0 {
		return "", propErrorf("%s must be positive", p.name)
	}
	return v, nil
}

func checkNonNegative(_ *State, _ *Domain, p *propDef, v string) (string, error) {
	if n, _ := strconv.Atoi(v); n < 0 {
		return "", propErrorf("%s must be positive or zero", p.name)
	}
	return v, nil
}

func checkDefaultUser(_ *State, _ *Domain, _ *propDef, v string) (string, error) {
	const allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+,."
	for _, c := range v {
		if !strings.ContainsRune(allowed, c) {
			return "", propErrorf("Username can contain only those characters: %s", allowed)
		}
	}
	return v, nil
}

func checkKernel(_ *State, _ *Domain, _ *propDef, v string) (string, error) {
	if strings.Contains(v, "/") {
		return "", propErrorf("Kernel name cannot contain '/'")
	}
	return v, nil
}

func checkKernelopts(_ *State, _ *Domain, _ *propDef, v string) (string, error) {
	if len(v) > 512 {
		return "", propErrorf("Kernelopts value too long (512 chars max)")
	}
	return v, nil
}

// isMAC matches ^([0-9a-f][0-9a-f]:){5}[0-9a-f][0-9a-f]$ (hand-written, as
// every check here: a compiled regexp would cost each tool's start-up).
func isMAC(v string) bool {
	if len(v) != 17 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if i%3 == 2 {
			if v[i] != ':' {
				return false
			}
		} else if !(v[i] >= '0' && v[i] <= '9' || v[i] >= 'a' && v[i] <= 'f') {
			return false
		}
	}
	return true
}

func checkMAC(_ *State, _ *Domain, _ *propDef, v string) (string, error) {
	v = strings.ToLower(v)
	if !isMAC(v) {
		// A plain ValueError in qubesd: the client sees no response.
		return "", ErrNoResponse
	}
	return v, nil
}

func checkVirtMode(_ *State, _ *Domain, _ *propDef, v string) (string, error) {
	v = strings.ToLower(v)
	if v != "hvm" && v != "pv" && v != "pvh" {
		return "", propErrorf("Invalid virtualization mode, supported values: hvm, pv, pvh")
	}
	return v, nil
}

func checkLabel(_ *State, _ *Domain, _ *propDef, v string) (string, error) {
	name, ok := lookupLabel(v)
	if !ok {
		return "", propErrorf("Label does not exist: %s", v)
	}
	return name, nil
}

func checkNetVM(st *State, d *Domain, _ *propDef, v string) (string, error) {
	if v == "" {
		return v, nil
	}
	nv := st.Domain(v)
	if ok, _ := nv.PropBool(st, "provides_network"); nv.Class == AdminVM || !ok {
		return "", propErrorf("The %s qube does not provide network", v)
	}
	if d != nil {
		if reaches(st, nv, d.Name) {
			return "", propErrorf("Loops in network are unsupported")
		}
		return v, nil
	}
	// default_netvm (app.py _setter_default_netvm): every qube that uses the
	// default would get it; none of them may be upstream of the new value.
	for _, n := range st.Names() {
		q := st.Domains[n]
		if _, ok := q.Props["netvm"]; ok || findProp(domainProps(), q.Class, "netvm") == nil {
			continue
		}
		if reaches(st, nv, n) {
			return "", propErrorf("Network loop on %s", pyRepr(n))
		}
	}
	return v, nil
}

// reaches reports whether following netvm links from start (start included)
// arrives at name.
func reaches(st *State, start *Domain, name string) bool {
	seen := map[string]bool{}
	for cur := start; cur != nil && !seen[cur.Name]; {
		if cur.Name == name {
			return true
		}
		seen[cur.Name] = true
		next, _, err := cur.Prop(st, "netvm")
		if err != nil || next == "" {
			return false
		}
		cur = st.Domain(next)
	}
	return false
}

func checkProvidesNetwork(st *State, d *Domain, _ *propDef, v string) (string, error) {
	if v == "False" && len(connectedVMs(st, d.Name)) > 0 {
		return "", propErrorf("The qube is still used by other qubes, change theirs 'netvm' first")
	}
	return v, nil
}

// connectedVMs lists domains whose effective netvm is name.
func connectedVMs(st *State, name string) []string {
	var out []string
	for _, n := range st.Names() {
		if n == name {
			continue
		}
		if v, _, err := st.Domains[n].Prop(st, "netvm"); err == nil && v == name {
			out = append(out, n)
		}
	}
	return out
}

func checkIsTemplate(st *State, _ *Domain, p *propDef, v string) (string, error) {
	if v != "" {
		if c := st.Domain(v).Class; c != TemplateVM {
			return "", propErrorf("wrong VM class: domains[%s] is of type %s and not %s", pyRepr(v), c, TemplateVM)
		}
	}
	return v, nil
}

func checkTemplate(st *State, d *Domain, p *propDef, v string) (string, error) {
	t := st.Domain(v)
	switch d.Class {
	case AppVM:
		if _, err := checkIsTemplate(st, d, p, v); err != nil {
			return "", err
		}
	case DispVM:
		// dispvm.py _setter_template: getattr(value, "template_for_dispvms", False).
		if ok, err := t.PropBool(st, "template_for_dispvms"); err != nil || !ok {
			return "", propErrorf("template for disposable must have template_for_dispvms=True")
		}
	}
	if d.Running() {
		return "", propErrorf("Cannot change template while qube is running")
	}
	return v, nil
}

func resetTemplate(st *State, _ *Domain) error {
	if t, _, _ := st.GlobalProp("default_template"); t != "" {
		return propErrorf("Cannot unset template. You can set it to the current default (%s) instead", t)
	}
	return propErrorf("Cannot unset template")
}

func checkDispvmTemplate(st *State, d *Domain, p *propDef, v string) (string, error) {
	if v == "" {
		return v, nil
	}
	t := st.Domain(v)
	if ok, err := t.PropBool(st, "template_for_dispvms"); err != nil || !ok {
		target := "system"
		if d != nil {
			target = "qube " + pyRepr(d.Name)
		}
		return "", propErrorf("Cannot set invalid property to %s, %s %s has template_for_dispvms set to False", target, p.name, pyRepr(v))
	}
	return v, nil
}

func icon(_ *State, d *Domain) string {
	label := d.Props["label"]
	switch {
	case d.Class == TemplateVM:
		return "templatevm-" + label
	case d.Features["servicevm"] != "":
		return "servicevm-" + label
	case d.Class == DispVM:
		return "dispvm-" + label
	case d.Class == StandaloneVM:
		return "standalonevm-" + label
	case d.Class == AdminVM:
		return "adminvm-black" // adminvm.py hardcodes it
	}
	return "appvm-" + label
}

// validateName is qubes.vm.validate_name for names given on the command line.
func validateName(v string) error {
	switch {
	case len(v) > 31:
		return propErrorf("VM name must be shorter than 32 characters")
	case v == "" || strings.ContainsRune("0123456789_.-", rune(v[0])):
		return propErrorf("VM name cannot start with hyphen, underscore, dot or numbers")
	case !isVMName(v):
		return propErrorf("VM name contains illegal characters")
	case v == "Domain-0":
		return propErrorf("VM name cannot be 'Domain-0'")
	case v == "none" || v == "default":
		return propErrorf("VM name cannot be 'none' nor 'default'")
	case strings.HasSuffix(v, "-dm"):
		return propErrorf("VM name cannot end with -dm")
	}
	return nil
}

// isVMName matches ^[a-zA-Z][a-zA-Z0-9_.-]*$.
func isVMName(v string) bool {
	return v != "" && isASCIIAlpha(v[0]) && allNameChars(v, "_.-")
}

func isASCIIAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// allNameChars reports whether v holds only ASCII letters, digits and
// bytes of extra.
func allNameChars(v, extra string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !isASCIIAlpha(c) && !(c >= '0' && c <= '9') && strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

// propDeps lists what refers to domain name: global properties (effective
// values) and explicitly set VM properties of other domains, as qubesd's
// get_qube_prop_deps does before a removal.
func propDeps(st *State, name string) (globals []string, qubes [][2]string) {
	for _, p := range globalProps() {
		if p.kind != kindVM {
			continue
		}
		if v, _, err := st.GlobalProp(p.name); err == nil && v == name {
			globals = append(globals, p.name)
		}
	}
	for _, n := range st.Names() {
		if n == name {
			continue
		}
		d := st.Domains[n]
		for _, p := range domainProps() {
			if p.kind != kindVM || !p.has(d.Class) {
				continue
			}
			if v, ok := d.Props[p.name]; ok && v == name {
				qubes = append(qubes, [2]string{n, p.name})
			}
		}
	}
	return globals, qubes
}

// propKindOf reports the kind of a domain property, for printing.
func propKindOf(class, name string) propKind {
	if p := findProp(domainProps(), class, name); p != nil {
		return p.kind
	}
	return kindStr
}
