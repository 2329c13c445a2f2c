package qubes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// DefaultTimeout applies to a command whose context has no deadline.
const DefaultTimeout = 2 * time.Minute

// Client runs the Qubes tools. The zero value is ready to use with the real
// tools on PATH.
type Client struct {
	// Runner runs the commands; nil means ExecRunner{}.
	Runner Runner
	// Timeout bounds each command whose context has no deadline; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// CloseTimeout bounds how long Stream.Close waits for the child to exit
	// after closing its stdin before killing it; 0 means 5s.
	CloseTimeout time.Duration
}

func (c *Client) runner() Runner {
	if c.Runner == nil {
		return ExecRunner{}
	}
	return c.Runner
}

func (c *Client) run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		t := c.Timeout
		if t == 0 {
			t = DefaultTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	return c.runner().Run(ctx, argv, stdin)
}

// admin runs a qvm-* tool and maps unknown-VM failures to ErrNoSuchVM.
func (c *Client) admin(ctx context.Context, argv ...string) ([]byte, error) {
	return c.adminIn(ctx, nil, argv)
}

func (c *Client) adminIn(ctx context.Context, stdin io.Reader, argv []string) ([]byte, error) {
	out, err := c.run(ctx, argv, stdin)
	if err != nil {
		return out, classifyAdmin(err)
	}
	return out, nil
}

// optEnd returns "--" when v would otherwise be parsed as an option.
func optEnd(v string) []string {
	if strings.HasPrefix(v, "-") {
		return []string{"--"}
	}
	return nil
}

// RunOptions modify qvm-run (qubes.md §3.1).
type RunOptions struct {
	// User runs the command as this user (-u); "" means the default user.
	User string
	// PassIO connects Stdin and the returned output to the remote command
	// (--pass-io); without it qvm-run discards both.
	PassIO bool
	// Stdin is fed to the remote command with PassIO; nil means no input.
	Stdin io.Reader
	// NoAutostart refuses to start a halted qube (--no-autostart). Run then
	// checks the power state first and returns ErrNotRunning or ErrPaused,
	// because qvm-run itself reports a skipped qube as a plain exit 1.
	NoAutostart bool
	// NoGUI skips the GUI session wait (--no-gui), which can block forever
	// on headless qubes.
	NoGUI bool
}

func (o RunOptions) argv(vm string) ([]string, error) {
	if err := ValidateVMName(vm); err != nil {
		return nil, err
	}
	argv := []string{"qvm-run"}
	if o.PassIO {
		argv = append(argv, "--pass-io")
	}
	if o.NoAutostart {
		argv = append(argv, "--no-autostart")
	}
	if o.NoGUI {
		argv = append(argv, "--no-gui")
	}
	if o.User != "" {
		if err := validateUser(o.User); err != nil {
			return nil, err
		}
		argv = append(argv, "-u", o.User)
	}
	return append(argv, vm), nil
}

// Run runs the shell command in vm with qvm-run (qubes.VMShell) and returns
// its output when opts.PassIO is set. The command is deliberately a shell
// command line for the remote shell; pass data with Exec instead.
func (c *Client) Run(ctx context.Context, vm, command string, opts RunOptions) ([]byte, error) {
	if command == "" || strings.HasPrefix(command, "-") || strings.ContainsRune(command, 0) {
		return nil, invalid("command", command)
	}
	return c.qvmRun(ctx, vm, []string{command}, opts)
}

// Exec runs argv in vm without a shell (qvm-run --no-shell, qubes.VMExec), so
// its elements reach the program unchanged.
func (c *Client) Exec(ctx context.Context, vm string, argv []string, opts RunOptions) ([]byte, error) {
	if len(argv) == 0 || argv[0] == "" || strings.HasPrefix(argv[0], "-") {
		return nil, invalid("program", strings.Join(argv, " "))
	}
	for _, a := range argv {
		if err := validateValue("program argument", a); err != nil {
			return nil, err
		}
	}
	return c.qvmRun(ctx, vm, append([]string{"--no-shell"}, argv...), opts)
}

func (c *Client) qvmRun(ctx context.Context, vm string, tail []string, opts RunOptions) ([]byte, error) {
	argv, err := opts.argv(vm)
	if err != nil {
		return nil, err
	}
	if tail[0] == "--no-shell" {
		// options must precede VMNAME
		argv = slices.Insert(argv, len(argv)-1, "--no-shell")
		tail = tail[1:]
	}
	argv = append(argv, tail...)
	if opts.NoAutostart {
		if err := c.requireRunning(ctx, vm); err != nil {
			return nil, err
		}
	}
	var stdin io.Reader
	if opts.PassIO {
		stdin = opts.Stdin
	}
	out, err := c.adminIn(ctx, stdin, argv)
	if err != nil {
		return out, fmt.Errorf("run in %s: %w", vm, err)
	}
	if !opts.PassIO {
		out = nil
	}
	return out, nil
}

// requireRunning returns ErrNotRunning or ErrPaused unless vm is running.
func (c *Client) requireRunning(ctx context.Context, vm string) error {
	running, err := c.IsRunning(ctx, vm)
	if err != nil {
		return err
	}
	if !running {
		return fmt.Errorf("%s: %w", vm, ErrNotRunning)
	}
	// qvm-check --running also succeeds for paused qubes (§3.2).
	paused, err := c.check(ctx, vm, "--paused")
	if err != nil {
		return err
	}
	if paused {
		return fmt.Errorf("%s: %w", vm, ErrPaused)
	}
	return nil
}

// check runs qvm-check [flag] VM: exit 0 true, exit 1 false, unknown VM
// ErrNoSuchVM.
func (c *Client) check(ctx context.Context, vm, flag string) (bool, error) {
	if err := ValidateVMName(vm); err != nil {
		return false, err
	}
	argv := []string{"qvm-check"}
	if flag != "" {
		argv = append(argv, flag)
	}
	_, err := c.admin(ctx, append(argv, vm)...)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNoSuchVM):
		return false, err
	case exitCode(err) == 1:
		return false, nil
	}
	return false, err
}

// Exists reports whether vm exists (qvm-check VM).
func (c *Client) Exists(ctx context.Context, vm string) (bool, error) {
	ok, err := c.check(ctx, vm, "")
	if errors.Is(err, ErrNoSuchVM) {
		return false, nil
	}
	return ok, err
}

// IsRunning reports whether vm is running (qvm-check --running). A paused,
// transient or halting qube counts as running, as in qvm-check (§3.2).
func (c *Client) IsRunning(ctx context.Context, vm string) (bool, error) {
	return c.check(ctx, vm, "--running")
}

// IsPaused reports whether vm is paused (qvm-check --paused).
func (c *Client) IsPaused(ctx context.Context, vm string) (bool, error) {
	return c.check(ctx, vm, "--paused")
}

// CreateOptions are the qvm-create parameters (§3.3).
type CreateOptions struct {
	// Class is the qube class (AppVM if empty).
	Class string
	// Template is the template (for StandaloneVM: the one to clone).
	Template string
	// Label is mandatory.
	Label string
	// Properties are set after creation (--property k=v).
	Properties map[string]string
}

var vmClasses = []string{"AppVM", "TemplateVM", "StandaloneVM", "DispVM"}

// Create creates vm with qvm-create.
func (c *Client) Create(ctx context.Context, vm string, opts CreateOptions) error {
	if err := ValidateVMName(vm); err != nil {
		return err
	}
	argv := []string{"qvm-create"}
	if opts.Class != "" {
		if !slices.Contains(vmClasses, opts.Class) {
			return invalid("class", opts.Class)
		}
		argv = append(argv, "--class", opts.Class)
	}
	if opts.Template != "" {
		if err := ValidateVMName(opts.Template); err != nil {
			return err
		}
		argv = append(argv, "--template", opts.Template)
	}
	if opts.Label == "" || !charsetOK(opts.Label, func(c byte) bool { return 'a' <= c && c <= 'z' }) {
		return invalid("label", opts.Label)
	}
	argv = append(argv, "--label", opts.Label)
	keys := make([]string, 0, len(opts.Properties))
	for k := range opts.Properties {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := opts.Properties[k]
		if err := validateIdent("property", k); err != nil {
			return err
		}
		if err := validateValue("property value", v); err != nil {
			return err
		}
		argv = append(argv, "--property", k+"="+v)
	}
	argv = append(argv, vm)
	// ErrNoSuchVM here means the template does not exist.
	if _, err := c.admin(ctx, argv...); err != nil {
		return fmt.Errorf("create %s: %w", vm, err)
	}
	return nil
}

// GetPref returns a property value (qvm-prefs VM PROP).
func (c *Client) GetPref(ctx context.Context, vm, prop string) (string, error) {
	if err := c.vmAnd(vm, "property", prop); err != nil {
		return "", err
	}
	out, err := c.admin(ctx, "qvm-prefs", vm, prop)
	if err != nil {
		return "", fmt.Errorf("get %s property %s: %w", vm, prop, err)
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}

// SetPref sets a property (qvm-prefs VM PROP VALUE).
func (c *Client) SetPref(ctx context.Context, vm, prop, value string) error {
	if err := c.vmAnd(vm, "property", prop); err != nil {
		return err
	}
	if err := validateValue("property value", value); err != nil {
		return err
	}
	argv := append(append([]string{"qvm-prefs", vm, prop}, optEnd(value)...), value)
	if _, err := c.admin(ctx, argv...); err != nil {
		return fmt.Errorf("set %s property %s: %w", vm, prop, err)
	}
	return nil
}

// ResetPref resets a property to its default (qvm-prefs VM PROP --default).
func (c *Client) ResetPref(ctx context.Context, vm, prop string) error {
	if err := c.vmAnd(vm, "property", prop); err != nil {
		return err
	}
	if _, err := c.admin(ctx, "qvm-prefs", vm, prop, "--default"); err != nil {
		return fmt.Errorf("reset %s property %s: %w", vm, prop, err)
	}
	return nil
}

func (c *Client) vmAnd(vm, what, name string) error {
	if err := ValidateVMName(vm); err != nil {
		return err
	}
	return validateIdent(what, name)
}

// Tags lists the tags of vm (qvm-tags VM list).
func (c *Client) Tags(ctx context.Context, vm string) ([]string, error) {
	if err := ValidateVMName(vm); err != nil {
		return nil, err
	}
	out, err := c.admin(ctx, "qvm-tags", vm, "list")
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", vm, err)
	}
	return strings.Fields(string(out)), nil
}

// HasTag reports whether vm carries tag (qvm-tags VM list TAG: exit 1 if not).
func (c *Client) HasTag(ctx context.Context, vm, tag string) (bool, error) {
	if err := c.vmTag(vm, tag); err != nil {
		return false, err
	}
	_, err := c.admin(ctx, "qvm-tags", vm, "list", tag)
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, ErrNoSuchVM) && exitCode(err) == 1:
		return false, nil
	}
	return false, fmt.Errorf("check tag %s of %s: %w", tag, vm, err)
}

// AddTags adds tags to vm (qvm-tags VM add TAG...).
func (c *Client) AddTags(ctx context.Context, vm string, tags ...string) error {
	if len(tags) == 0 {
		return invalid("tags", "")
	}
	for _, t := range tags {
		if err := c.vmTag(vm, t); err != nil {
			return err
		}
	}
	if _, err := c.admin(ctx, append([]string{"qvm-tags", vm, "add"}, tags...)...); err != nil {
		return fmt.Errorf("add tags to %s: %w", vm, err)
	}
	return nil
}

// DelTag removes one tag from vm (qvm-tags VM del TAG; one tag per call).
func (c *Client) DelTag(ctx context.Context, vm, tag string) error {
	if err := c.vmTag(vm, tag); err != nil {
		return err
	}
	if _, err := c.admin(ctx, "qvm-tags", vm, "del", tag); err != nil {
		return fmt.Errorf("delete tag %s of %s: %w", tag, vm, err)
	}
	return nil
}

func (c *Client) vmTag(vm, tag string) error {
	if err := ValidateVMName(vm); err != nil {
		return err
	}
	return ValidateTag(tag)
}

// GetFeature returns a feature value (qvm-features VM NAME); an unset
// feature is ErrUnset.
func (c *Client) GetFeature(ctx context.Context, vm, name string) (string, error) {
	if err := c.vmAnd(vm, "feature", name); err != nil {
		return "", err
	}
	out, err := c.admin(ctx, "qvm-features", vm, name)
	if err != nil {
		if !errors.Is(err, ErrNoSuchVM) && exitCode(err) == 1 {
			return "", fmt.Errorf("feature %s of %s: %w", name, vm, ErrUnset)
		}
		return "", fmt.Errorf("get feature %s of %s: %w", name, vm, err)
	}
	return strings.TrimSuffix(string(out), "\n"), nil
}

// SetFeature sets a feature (qvm-features VM NAME VALUE). Values are strings;
// "" means false (§3.6).
func (c *Client) SetFeature(ctx context.Context, vm, name, value string) error {
	if err := c.vmAnd(vm, "feature", name); err != nil {
		return err
	}
	if err := validateValue("feature value", value); err != nil {
		return err
	}
	argv := append(append([]string{"qvm-features", vm, name}, optEnd(value)...), value)
	if _, err := c.admin(ctx, argv...); err != nil {
		return fmt.Errorf("set feature %s of %s: %w", name, vm, err)
	}
	return nil
}

// UnsetFeature removes a feature (qvm-features VM NAME --unset).
func (c *Client) UnsetFeature(ctx context.Context, vm, name string) error {
	if err := c.vmAnd(vm, "feature", name); err != nil {
		return err
	}
	if _, err := c.admin(ctx, "qvm-features", vm, name, "--unset"); err != nil {
		return fmt.Errorf("unset feature %s of %s: %w", name, vm, err)
	}
	return nil
}

// Features lists all features of vm (qvm-features VM): lines "NAME  VALUE".
func (c *Client) Features(ctx context.Context, vm string) (map[string]string, error) {
	if err := ValidateVMName(vm); err != nil {
		return nil, err
	}
	out, err := c.admin(ctx, "qvm-features", vm)
	if err != nil {
		return nil, fmt.Errorf("list features of %s: %w", vm, err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, " \t\r")
		if line == "" {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		m[name] = strings.TrimSpace(value)
	}
	return m, nil
}

// EnableService turns a qvm-service flag on (qvm-service --enable VM NAME).
func (c *Client) EnableService(ctx context.Context, vm, name string) error {
	return c.service(ctx, "--enable", vm, name)
}

// DisableService turns a qvm-service flag off (--disable).
func (c *Client) DisableService(ctx context.Context, vm, name string) error {
	return c.service(ctx, "--disable", vm, name)
}

// UnsetService removes a qvm-service flag (--unset), reverting to the
// per-class default.
func (c *Client) UnsetService(ctx context.Context, vm, name string) error {
	return c.service(ctx, "--unset", vm, name)
}

func (c *Client) service(ctx context.Context, flag, vm, name string) error {
	if err := ValidateVMName(vm); err != nil {
		return err
	}
	if err := validateServiceFlag(name); err != nil {
		return err
	}
	if _, err := c.admin(ctx, "qvm-service", flag, vm, name); err != nil {
		return fmt.Errorf("qvm-service %s %s %s: %w", flag, vm, name, err)
	}
	return nil
}

// GetService reports whether a qvm-service flag is on (qvm-service VM NAME
// prints on/off); an unset flag is ErrUnset.
func (c *Client) GetService(ctx context.Context, vm, name string) (bool, error) {
	if err := ValidateVMName(vm); err != nil {
		return false, err
	}
	if err := validateServiceFlag(name); err != nil {
		return false, err
	}
	out, err := c.admin(ctx, "qvm-service", vm, name)
	if err != nil {
		if !errors.Is(err, ErrNoSuchVM) && exitCode(err) == 1 {
			return false, fmt.Errorf("service %s of %s: %w", name, vm, ErrUnset)
		}
		return false, fmt.Errorf("get service %s of %s: %w", name, vm, err)
	}
	switch v := strings.TrimSpace(string(out)); v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	default:
		return false, fmt.Errorf("get service %s of %s: unexpected output %q", name, vm, v)
	}
}

// Start starts vm (qvm-start --skip-if-running VM), so starting a running
// qube is not an error.
func (c *Client) Start(ctx context.Context, vm string) error {
	if err := ValidateVMName(vm); err != nil {
		return err
	}
	if _, err := c.admin(ctx, "qvm-start", "--skip-if-running", vm); err != nil {
		return fmt.Errorf("start %s: %w", vm, err)
	}
	return nil
}

// Shutdown shuts vm down (qvm-shutdown [--wait] VM).
func (c *Client) Shutdown(ctx context.Context, vm string, wait bool) error {
	if err := ValidateVMName(vm); err != nil {
		return err
	}
	argv := []string{"qvm-shutdown"}
	if wait {
		argv = append(argv, "--wait")
	}
	if _, err := c.admin(ctx, append(argv, vm)...); err != nil {
		return fmt.Errorf("shut down %s: %w", vm, err)
	}
	return nil
}

// QrexecCommand builds the qrexec-client command "USER:QUBESRPC SERVICE+ARG
// dom0" (§1.7) from validated parts; user "" means DEFAULT.
func QrexecCommand(user, service, arg string) (string, error) {
	if user == "" {
		user = "DEFAULT"
	}
	if err := validateUser(user); err != nil {
		return "", err
	}
	if err := ValidateService(service); err != nil {
		return "", err
	}
	if err := ValidateArgument(arg); err != nil {
		return "", err
	}
	return user + ":QUBESRPC " + service + "+" + arg + " dom0", nil
}

func qrexecDom0Argv(vm, user, service, arg string) ([]string, error) {
	if err := ValidateVMName(vm); err != nil {
		return nil, err
	}
	cmd, err := QrexecCommand(user, service, arg)
	if err != nil {
		return nil, err
	}
	return []string{"qrexec-client", "-d", vm, cmd}, nil
}

func qrexecVMArgv(target, service, arg string) ([]string, error) {
	if err := validateTarget(target); err != nil {
		return nil, err
	}
	if err := ValidateService(service); err != nil {
		return nil, err
	}
	if err := ValidateArgument(arg); err != nil {
		return nil, err
	}
	if target == "" {
		target = "@default"
	}
	return []string{"qrexec-client-vm", target, service + "+" + arg}, nil
}

// Call runs a qrexec service in vm from dom0 with qrexec-client -d (§1.6–1.7),
// feeding stdin and returning the service's output. Policy is not consulted
// and vm is not started: a halted vm gives exit 125, reported as ErrNotRunning
// (with ErrQrexec) after a qvm-check confirms it is not running.
func (c *Client) Call(ctx context.Context, vm, user, service, arg string, stdin io.Reader) ([]byte, error) {
	argv, err := qrexecDom0Argv(vm, user, service, arg)
	if err != nil {
		return nil, err
	}
	out, err := c.run(ctx, argv, stdin)
	if err != nil {
		return out, fmt.Errorf("qrexec call %s+%s to %s: %w", service, arg, vm, c.classifyDom0(ctx, vm, err))
	}
	return out, nil
}

// classifyDom0 maps a qrexec-client -d failure; for exit 125 it asks
// qvm-check whether the cause is a qube that is not running.
func (c *Client) classifyDom0(ctx context.Context, vm string, err error) error {
	err = classifyQrexec(err)
	if errors.Is(err, ErrQrexec) {
		if running, cerr := c.IsRunning(ctx, vm); cerr == nil && !running {
			return wrap(ErrNotRunning, err)
		}
	}
	return err
}

// CallVM runs a qrexec service from inside a VM with qrexec-client-vm
// (§1.7). target "" means @default. Exit 125/126/127 become ErrQrexec,
// ErrRefused and ErrNoService.
func (c *Client) CallVM(ctx context.Context, target, service, arg string, stdin io.Reader) ([]byte, error) {
	argv, err := qrexecVMArgv(target, service, arg)
	if err != nil {
		return nil, err
	}
	out, err := c.run(ctx, argv, stdin)
	if err != nil {
		return out, fmt.Errorf("qrexec call %s+%s to %s: %w", service, arg, argv[1], classifyQrexec(err))
	}
	return out, nil
}
