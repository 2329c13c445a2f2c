package sim

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

const qvmCreateUsage = `usage: qvm-create [--verbose] [--quiet] [--help] [--version] [--class CLS]
                  [--standalone] [--disp] [--property NAME=VALUE]
                  [--pool VOLUME_NAME=POOL_NAME] [-P POOL_NAME]
                  [--template VALUE] [--label VALUE] [--help-classes]
                  [--root-copy-from FILENAME | --root-move-from FILENAME]
                  [VMNAME]
`

// Log levels of Python's logging module, for qubesadmin's log output.
const (
	logInfo    = 20
	logWarning = 30
	logError   = 40
)

// logf prints a qubesadmin log record. With the default verbosity the tools
// enable a "NAME: MESSAGE" handler at INFO; with -q no handler is installed
// and Python's last-resort handler prints bare WARNING+ messages.
func (p *qaParser) logf(logger string, level int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	switch {
	case p.verbosity() >= 1 && level >= logInfo:
		fmt.Fprintf(p.c.Stdio.Err, "%s: %s\n", logger, msg)
	case p.verbosity() < 1 && level >= logWarning:
		fmt.Fprintln(p.c.Stdio.Err, msg)
	}
}

// vmClasses are the classes admin.vmclass.List reports that qvm-create can
// make.
var vmClasses = []string{AdminVM, AppVM, DispVM, StandaloneVM, TemplateVM}

// orderedProps keeps argparse's properties dict: insertion order, later
// values replace earlier ones in place.
type orderedProps struct {
	keys []string
	vals map[string]string
}

func (o *orderedProps) set(k, v string) {
	if o.vals == nil {
		o.vals = map[string]string{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *orderedProps) pop(k string) (string, bool) {
	v, ok := o.vals[k]
	if !ok {
		return "", false
	}
	delete(o.vals, k)
	for i, x := range o.keys {
		if x == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			break
		}
	}
	return v, true
}

func qvmCreate(c *Call) int {
	p := newQAParser(c, qvmCreateUsage)
	cls := AppVM
	var standalone, disp, helpClasses, noRoot bool
	var pools []string
	var onePool, rootCopy, rootMove string
	props := &orderedProps{}
	p.strFlag(&cls, "--class", "-C")
	p.boolFlag(&standalone, "--standalone")
	p.boolFlag(&disp, "--disp")
	p.add(1, func(v []string) error {
		k, val, ok := strings.Cut(v[0], "=")
		if !ok {
			return usageErrorf("Invalid property token: %s", pyRepr(v[0]))
		}
		props.set(k, val)
		return nil
	}, "--property", "--prop")
	p.listFlag(&pools, "--pool", "-p")
	p.strFlag(&onePool, "-P")
	p.add(1, func(v []string) error { props.set("template", v[0]); return nil }, "--template", "-t")
	p.add(1, func(v []string) error { props.set("label", v[0]); return nil }, "--label", "-l")
	p.boolFlag(&helpClasses, "--help-classes")
	var rootGiven string
	p.add(1, func(v []string) error {
		if rootGiven != "" && rootGiven != "--root-copy-from/-r" {
			return usageErrorf("argument --root-copy-from/-r: not allowed with argument %s", rootGiven)
		}
		rootGiven, rootCopy = "--root-copy-from/-r", v[0]
		return nil
	}, "--root-copy-from", "-r")
	p.add(1, func(v []string) error {
		if rootGiven != "" && rootGiven != "--root-move-from/-R" {
			return usageErrorf("argument --root-move-from/-R: not allowed with argument %s", rootGiven)
		}
		rootGiven, rootMove = "--root-move-from/-R", v[0]
		return nil
	}, "--root-move-from", "-R")
	p.boolFlag(&noRoot, "--no-root")
	pos, unknown, err := p.parse(c.Args)
	if err == nil {
		err = checkPositionals(pos, unknown, nil, 1)
	}
	if err != nil {
		return p.fail(err)
	}
	if len(pos) == 1 && pos[0] != "" {
		props.set("name", pos[0])
	}

	if helpClasses {
		for _, k := range vmClasses {
			fmt.Fprintln(c.Stdio.Out, k)
		}
		return 0
	}
	for _, pv := range pools {
		if parts := strings.Split(pv, "="); len(parts) != 2 {
			return p.fail(usageErrorf("Pool argument must be of form: -p volume_name=pool_name"))
		}
	}
	if disp {
		if _, ok := props.vals["label"]; !ok {
			props.set("label", "red")
		}
		cls = DispVM
	}
	if standalone {
		cls = StandaloneVM
	}
	if _, ok := props.vals["label"]; !ok {
		return p.fail(usageErrorf("--label option is mandatory"))
	}
	if _, ok := props.vals["name"]; !ok {
		return p.fail(usageErrorf("VMNAME is mandatory"))
	}
	rootSrc := rootCopy
	if rootSrc == "" {
		rootSrc = rootMove
	}
	if rootSrc != "" {
		if _, err := os.Stat(rootSrc); err != nil {
			return p.fail(usageErrorf("File pointed by --root-copy-from/--root-move-from does not exist"))
		}
		if cls == AppVM || cls == DispVM {
			return p.fail(usageErrorf("--root-copy-from/--root-move-from used but this qube does not have own 'root' volume (uses template's one)"))
		}
	}
	if !contains(Labels, props.vals["label"]) {
		return p.fail(usageErrorf("no such label: %s; available: %s", pyRepr(props.vals["label"]), strings.Join(Labels, ", ")))
	}
	if !contains(vmClasses, cls) {
		return p.fail(usageErrorf("no such domain class: %s", pyRepr(cls)))
	}

	code := 0
	err = c.Machine.Update(func(st *State) error {
		name, _ := props.pop("name")
		var d *Domain
		var err error
		if tpl, ok := props.vals["template"]; ok && cls == StandaloneVM {
			props.pop("template")
			d, err = c.Machine.cloneVM(st, tpl, name, c.Domain)
		} else {
			label, _ := props.pop("label")
			tpl, hasTpl := props.pop("template")
			d, err = c.Machine.addNewVM(st, cls, name, label, tpl, hasTpl, c.Domain)
		}
		if err != nil {
			p.logf("app", logError, "Error creating VM: %s", runtimeMsg(err))
			code = 1
			return errAborted
		}
		for _, k := range props.keys {
			wasAuto, _ := d.PropBool(st, "autostart")
			err := d.SetProp(st, k, props.vals[k])
			if err == nil && k == "autostart" {
				if isAuto, _ := d.PropBool(st, "autostart"); isAuto || wasAuto {
					err = c.Machine.setAutostartLink(d.Name, isAuto)
				}
			}
			if err != nil {
				p.logf("app", logError, "Error setting property %s (but VM created): %s", k, createPropMsg(d, k, err))
				code = 2
			}
		}
		if rootSrc != "" {
			if err := c.Machine.importRoot(d, rootSrc, rootMove != ""); err != nil {
				p.logf("app", logError, "Error importing root volume (but VM created): %s", runtimeMsg(err))
				code = 3
			}
		}
		return nil
	})
	if err != nil && err != errAborted {
		p.logf("app", logError, "Error creating VM: %s", err)
		return 1
	}
	return code
}

// errAborted makes Machine.Update discard the state after the tool already
// reported why.
var errAborted = errors.New("aborted")

// createPropMsg is the message qubesd returns for a property set by name
// through the Admin API (no qvm-prefs parser in between).
func createPropMsg(d *Domain, k string, err error) string {
	if errors.Is(err, ErrNoSuchProperty) {
		return fmt.Sprintf("Invalid property %s of %s", pyRepr(k), d.Name)
	}
	return runtimeMsg(err)
}

// addNewVM is admin.vm.Create.CLASS followed by app.add_new_vm.
func (m *Machine) addNewVM(st *State, cls, name, label, tpl string, hasTpl bool, caller string) (*Domain, error) {
	if hasTpl && cls != AppVM && cls != DispVM {
		return nil, propErrorf("%s cannot be based on template", cls)
	}
	if cls == AdminVM {
		return nil, propErrorf("%s cannot be created", cls)
	}
	if err := validateName(name); err != nil {
		return nil, err
	}
	if st.Domain(name) != nil {
		return nil, propErrorf("Qube already exists: %s", name)
	}
	if hasTpl && st.Domain(tpl) == nil {
		return nil, propErrorf("No such domain: %s", pyRepr(tpl))
	}
	if !hasTpl && (cls == AppVM || cls == DispVM) {
		def := "default_template"
		if cls == DispVM {
			def = "default_dispvm"
		}
		tpl, _, _ = st.GlobalProp(def)
		if tpl == "" {
			return nil, propErrorf("Template for the qube not specified, nor default template set.")
		}
	}
	d := &Domain{
		Name:  name,
		Class: cls,
		QID:   unusedQID(st),
		UUID:  newUUID(),
		Props: map[string]string{"label": label},
		Power: Halted,
	}
	if cls == AppVM || cls == DispVM {
		v, err := typeCheck(st, d, findProp(domainProps(), cls, "template"), tpl)
		if err != nil {
			return nil, err
		}
		d.Props["template"] = v
	}
	d.AddTag("created-by-" + caller)
	if err := m.InitDomainFS(st, d); err != nil {
		return nil, err
	}
	st.Domains[name] = d
	st.NextQID = unusedQID(st)
	return d, nil
}

// cloneVM is qubesadmin's app.clone_vm as qvm-create --standalone -t uses it:
// a new StandaloneVM with the source's label, explicitly set properties,
// tags (but created-by-*) and features, and a copy of its root.
func (m *Machine) cloneVM(st *State, srcName, name, caller string) (*Domain, error) {
	src := st.Domain(srcName)
	if src == nil {
		return nil, propErrorf("No such domain: %s", pyRepr(srcName))
	}
	if err := validateName(name); err != nil {
		return nil, err
	}
	if st.Domain(name) != nil {
		return nil, propErrorf("Qube already exists: %s", name)
	}
	d := &Domain{
		Name:  name,
		Class: StandaloneVM,
		QID:   unusedQID(st),
		UUID:  newUUID(),
		Props: map[string]string{"label": src.Props["label"]},
		Power: Halted,
	}
	d.AddTag("created-by-" + caller)
	keys := sortedKeys(src.Props)
	for _, k := range keys {
		switch k {
		case "name", "qid", "template", "label", "uuid", "installed_by_rpm":
			continue
		}
		if p := findProp(domainProps(), StandaloneVM, k); p != nil && p.computed == nil {
			d.Props[k] = src.Props[k]
		}
	}
	for _, t := range src.Tags {
		if !strings.HasPrefix(t, "created-by-") {
			d.AddTag(t)
		}
	}
	if len(src.Features) > 0 {
		d.Features = map[string]string{}
		for k, v := range src.Features {
			d.Features[k] = v
		}
	}
	if err := m.CloneDomainFS(st, d, srcName); err != nil {
		return nil, err
	}
	st.Domains[name] = d
	st.NextQID = unusedQID(st)
	return d, nil
}

// importRoot is --root-copy-from/--root-move-from. The simulator has no disk
// images: a directory is taken as the root tree (copied, or moved with -R);
// a regular file cannot be imported.
func (m *Machine) importRoot(d *Domain, src string, move bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return propErrorf("the simulator imports root trees (directories), not disk images: %s", src)
	}
	if err := copyTree(src, m.Root(d.Name), nil); err != nil {
		return fmt.Errorf("import root of %s: %w", d.Name, err)
	}
	if move {
		return os.RemoveAll(src)
	}
	return nil
}

// unusedQID is app.domains.get_new_unused_qid: the lowest free qid from 1.
func unusedQID(st *State) int {
	used := map[int]bool{}
	for _, d := range st.Domains {
		used[d.QID] = true
	}
	q := 1
	for used[q] {
		q++
	}
	return q
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := randomBytes(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// domainNames returns the names of ds, sorted.
func domainNames(ds []*Domain) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Name)
	}
	sort.Strings(out)
	return out
}
