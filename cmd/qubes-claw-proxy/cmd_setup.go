package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy"
	"github.com/qubes-claw/qubes-claw/pkg/openclaw"
	"github.com/qubes-claw/qubes-claw/pkg/vmsetup"
)

// SetupOptions are the setup command's inputs.
type SetupOptions struct {
	g   *globals
	Out io.Writer
	In  io.Reader
	// APIKeyStdin reads the provider's API key from stdin (never argv,
	// which every process of the VM can read).
	APIKeyStdin bool
	BaseURL     string
	Model       string
	Force       bool
	NoStart     bool
	// Check reports what setup would change ("would ..." lines) and
	// changes nothing: the installer's idempotence test and dry run.
	Check bool
	run   runner
}

// AddFlags registers the command's flags.
func (o *SetupOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.APIKeyStdin, "api-key-stdin", false, "read the provider's API key from stdin and store it in the user's proxy config")
	fs.StringVar(&o.BaseURL, "base-url", "", "the provider's base URL (default: the config's)")
	fs.StringVar(&o.Model, "model", "", "OpenClaw's default model (default: the provider's first model)")
	fs.BoolVar(&o.Force, "force", false, "replace an openclaw.json edited by hand (kept as .bak)")
	fs.BoolVar(&o.NoStart, "no-start", false, "write files and linger only; start nothing now")
	fs.BoolVar(&o.Check, "check", false, "change nothing: print a \"would ...\" line for each thing setup would change (none: all up to date)")
}

func newSetupCmd(g *globals, runF func(context.Context, *SetupOptions) error) *cobra.Command {
	opts := &SetupOptions{g: g, run: g.run}
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Set up the VM: proxy config, OpenClaw config, user units, linger",
		Long: `setup prepares the agent VM for setup.user (run it as root, e.g. from dom0 with
qvm-run -u root VM 'qubes-claw-proxy setup --provider anthropic --api-key-stdin'):

  - the user's proxy config ~/.config/qubes-claw/qubes-claw-proxy.yaml: the
    provider (--provider), its key (--api-key-stdin) and base URL, and a client
    token generated once; other keys and comments are kept;
  - ~/.openclaw/openclaw.json for that provider (as openclaw-config does);
  - the user units qubes-claw-proxy.service and qubes-claw-gateway.service in
    ~/.config/systemd/user, enabled, each running only when its Qubes service
    flag is on (qvm-service --enable VM qubes-claw-proxy / qubes-claw-gateway;
    flags are read at VM boot);
  - linger, so the units start at boot without a login. A StandaloneVM or
    TemplateVM keeps it; an AppVM loses /var at shutdown, so setup also writes
    a boot hook in setup.rc_local_dir (/rw/config/rc.local.d) re-enabling it.

Then it reloads the user manager and (re)starts what changed. Running it
again changes nothing that is already right; --check prints a "would ..." line
per change it would make, and changes nothing.` + exitStatusHelp + `
  3    openclaw.json was edited by hand and left unchanged (all else was done)`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("setup takes no arguments")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out, opts.In = cmd.OutOrStdout(), cmd.InOrStdin()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSetup(cmd.Context(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

// userConfigHeader heads a user config setup creates.
const userConfigHeader = ` qubes-claw-proxy user configuration, written by "qubes-claw-proxy setup".
 Later runs of setup change only the keys they set; edits and comments stay.
 Every key: /etc/qubes-claw/qubes-claw-proxy.yaml.`

func runSetup(ctx context.Context, opts *SetupOptions) error {
	base, _, err := opts.g.load()
	if err != nil {
		return err
	}
	sc := base.Setup
	home := sc.HomeDir()
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		return &cli.Error{Code: exitConfig, Msg: fmt.Sprintf("setup.user %s: no home directory %s (set setup.home)", sc.User, home), Err: err}
	}
	owner, err := vmsetup.OwnerOf(home)
	if err != nil {
		return err
	}
	changed := false
	note := func(did bool, what string) {
		switch {
		case did && opts.Check:
			changed = true
			fmt.Fprintf(opts.Out, "would write %s\n", what)
		case did:
			changed = true
			fmt.Fprintf(opts.Out, "wrote %s\n", what)
		default:
			fmt.Fprintf(opts.Out, "up to date: %s\n", what)
		}
	}
	writeFile, symlink := vmsetup.WriteFile, vmsetup.Symlink
	if opts.Check {
		writeFile, symlink = differs, linkDiffers
	}

	// 1. The user's proxy config, validated as the units will load it.
	userFile := filepath.Join(home, ".config", "qubes-claw", "qubes-claw-proxy.yaml")
	old, err := os.ReadFile(userFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	provider := vmsetup.GetYAML(old, "provider")
	if fl := opts.g.flags.Lookup("provider"); (fl != nil && fl.Changed) || provider == "" {
		provider = base.Provider
	}
	sets := [][2]string{{"provider", provider}}
	if vmsetup.GetYAML(old, "token") == "" {
		sets = append(sets, [2]string{"token", newToken()})
	}
	if fl := opts.g.flags.Lookup("listen"); fl != nil && fl.Changed {
		sets = append(sets, [2]string{"listen", base.Listen})
	}
	if opts.APIKeyStdin {
		key, err := readKey(opts.In)
		if err != nil {
			return err
		}
		sets = append(sets, [2]string{provider + ".api_key", key})
	}
	if opts.BaseURL != "" {
		sets = append(sets, [2]string{provider + ".base_url", opts.BaseURL})
	}
	doc, err := vmsetup.SetYAML(old, userConfigHeader, sets)
	if err != nil {
		return &cli.Error{Code: exitConfig, Msg: userFile, Err: err}
	}
	cfg, err := effectiveConfig(doc)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	did, err := writeFile(userFile, doc, 0o600, owner)
	if err != nil {
		return err
	}
	note(did, userFile+" (provider "+cfg.Provider+")")

	// 2. OpenClaw's config.
	ocPath := filepath.Join(home, ".openclaw", "openclaw.json")
	if opts.Check {
		return checkRest(opts, sc, cfg, home, ocPath, owner, changed)
	}
	outcome, ocErr := writeOpenclaw(cfg, ocPath, openclaw.DefaultProviderID, opts.Model, opts.Force, opts.Out)
	if ocErr == nil {
		note(outcome != openclaw.Unchanged, ocPath)
		changed = changed || outcome != openclaw.Unchanged
	}
	for _, p := range []string{filepath.Dir(ocPath), ocPath, openclaw.StampPath(ocPath), ocPath + ".bak"} {
		if err := chown(p, owner); err != nil {
			return err
		}
	}

	// 3. The units, enabled the way systemctl --user enable links them.
	unitDir := filepath.Join(home, ".config", "systemd", "user")
	uo := vmsetup.UnitOptionsOf(sc)
	for _, u := range []struct {
		name string
		text []byte
	}{{vmsetup.ProxyUnit, vmsetup.ProxyUnitText(uo)}, {vmsetup.GatewayUnit, vmsetup.GatewayUnitText(uo)}} {
		did, err := writeFile(filepath.Join(unitDir, u.name), u.text, 0o644, owner)
		if err != nil {
			return err
		}
		note(did, filepath.Join(unitDir, u.name))
		link := filepath.Join(unitDir, "default.target.wants", u.name)
		did, err = symlink("../"+u.name, link, owner)
		if err != nil {
			return err
		}
		if did {
			changed = true
			fmt.Fprintf(opts.Out, "enabled %s\n", u.name)
		}
	}

	// 4. Linger, where it survives a reboot of this VM's class.
	pers, err := vmsetup.DetectPersistence(string(sc.QubesRunDir))
	if err != nil {
		return err
	}
	managerUp := false
	if _, err := opts.run(ctx, "loginctl", "show-user", sc.User, "--property=State", "--value"); err == nil {
		managerUp = true
	}
	switch pers {
	case vmsetup.RWOnly:
		hook := filepath.Join(string(sc.RCLocalDir), vmsetup.LingerHookName)
		did, err := vmsetup.WriteFile(hook, vmsetup.LingerHook(sc.User), 0o755, vmsetup.Owner{})
		if err != nil {
			return fmt.Errorf("AppVM boot hook (linger is lost with /var at shutdown; run setup as root): %w", err)
		}
		note(did, hook+" (AppVM: re-enables linger at each boot)")
	case vmsetup.None:
		fmt.Fprintf(opts.Out, "warning: this is a disposable VM; nothing set up here survives its shutdown\n")
	}
	if _, err := opts.run(ctx, "loginctl", "enable-linger", sc.User); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "linger on for %s (%s)\n", sc.User, map[vmsetup.Persistence]string{
		vmsetup.Full: "kept across reboots", vmsetup.RWOnly: "re-enabled at each boot by the hook",
		vmsetup.None: "until shutdown", vmsetup.NotQubes: "kept across reboots"}[pers])

	// 5. Apply now. A manager that enable-linger just started has read the
	// units and started default.target; a running one must reload.
	if !opts.NoStart && managerUp {
		sctl := userSystemctl(sc.User)
		if _, err := opts.run(ctx, append(sctl, "daemon-reload")...); err != nil {
			return err
		}
		verb := "start"
		if changed {
			verb = "restart"
		}
		if _, err := opts.run(ctx, append(sctl, append([]string{verb}, vmsetup.Units...)...)...); err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, "%sed %s\n", verb, strings.Join(vmsetup.Units, " "))
	}
	for _, svc := range []string{vmsetup.ProxyService, vmsetup.GatewayService} {
		if !flagOn(sc, svc) {
			fmt.Fprintf(opts.Out, "note: Qubes service flag %s is off: in dom0, qvm-service --enable VM %s, then restart the VM\n", svc, svc)
		}
	}
	return ocErr
}

// userSystemctl reaches the user manager of user: directly when we are that
// user, else through systemd's user@ machine syntax (as root).
func userSystemctl(user string) []string {
	if os.Getenv("USER") == user {
		return []string{"systemctl", "--user"}
	}
	return []string{"systemctl", "--user", "--machine=" + user + "@"}
}

// effectiveConfig loads the configuration the user's units will see: the
// system file, then doc as the user file, without this process's
// environment or flags. A provider without its key fails here, naming it.
func effectiveConfig(doc []byte) (llmproxy.Config, error) {
	f, err := os.CreateTemp("", "qubes-claw-proxy-*.yaml")
	if err != nil {
		return llmproxy.Config{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(doc); err != nil {
		f.Close()
		return llmproxy.Config{}, err
	}
	f.Close()
	spec := llmproxy.Spec()
	spec.UserFile = config.Path(f.Name())
	cfg, _, err := spec.Load(nil)
	if err != nil {
		return cfg, err
	}
	if _, err := llmproxy.Chain(cfg, http.DefaultClient); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func readKey(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return "", err
	}
	key := strings.TrimSpace(string(b))
	if key == "" || strings.ContainsAny(key, "\n\r") {
		return "", cli.Usagef("--api-key-stdin: expected one key on stdin")
	}
	return key, nil
}

func newToken() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "qcp-" + hex.EncodeToString(b[:])
}

func chown(path string, o vmsetup.Owner) error {
	if !o.Set {
		return nil
	}
	if err := os.Lchown(path, o.UID, o.GID); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// flagOn reports whether a Qubes service flag is set in this boot.
func flagOn(sc vmsetup.Config, service string) bool {
	_, err := os.Stat(filepath.Join(string(sc.ServiceFlagDir), service))
	return err == nil
}

// differs is vmsetup.WriteFile's test without the write: does path lack
// exactly content and mode?
func differs(path string, content []byte, mode os.FileMode, _ vmsetup.Owner) (bool, error) {
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return string(old) != string(content) || fi.Mode().Perm() != mode.Perm(), nil
}

// linkDiffers is vmsetup.Symlink's test without the change.
func linkDiffers(target, path string, _ vmsetup.Owner) (bool, error) {
	cur, err := os.Readlink(path)
	if err == nil {
		return cur != target, nil
	}
	if _, lerr := os.Lstat(path); lerr == nil {
		return false, fmt.Errorf("%s exists and is not a symlink", path)
	}
	return true, nil
}

// checkRest is setup's check from OpenClaw's config on: the same steps as
// runSetup, compared and never written, nothing started.
func checkRest(opts *SetupOptions, sc vmsetup.Config, cfg llmproxy.Config, home, ocPath string, owner vmsetup.Owner, changed bool) error {
	note := func(did bool, what string) {
		if did {
			changed = true
			fmt.Fprintf(opts.Out, "would write %s\n", what)
		} else {
			fmt.Fprintf(opts.Out, "up to date: %s\n", what)
		}
	}
	content, err := openclawContent(cfg, ocPath, openclaw.DefaultProviderID, opts.Model)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(ocPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	note(err != nil || string(old) != string(content), ocPath)
	unitDir := filepath.Join(home, ".config", "systemd", "user")
	uo := vmsetup.UnitOptionsOf(sc)
	for _, u := range []struct {
		name string
		text []byte
	}{{vmsetup.ProxyUnit, vmsetup.ProxyUnitText(uo)}, {vmsetup.GatewayUnit, vmsetup.GatewayUnitText(uo)}} {
		did, err := differs(filepath.Join(unitDir, u.name), u.text, 0o644, owner)
		if err != nil {
			return err
		}
		note(did, filepath.Join(unitDir, u.name))
		did, err = linkDiffers("../"+u.name, filepath.Join(unitDir, "default.target.wants", u.name), owner)
		if err != nil {
			return err
		}
		if did {
			changed = true
			fmt.Fprintf(opts.Out, "would enable %s\n", u.name)
		}
	}
	pers, err := vmsetup.DetectPersistence(string(sc.QubesRunDir))
	if err != nil {
		return err
	}
	if pers == vmsetup.RWOnly {
		hook := filepath.Join(string(sc.RCLocalDir), vmsetup.LingerHookName)
		did, err := differs(hook, vmsetup.LingerHook(sc.User), 0o755, vmsetup.Owner{})
		if err != nil {
			return err
		}
		note(did, hook+" (AppVM: re-enables linger at each boot)")
	}
	// loginctl enable-linger records linger as this file (systemd).
	linger := string(config.ResolveEnv(config.Path("/var/lib/systemd/linger/" + sc.User)))
	if _, err := os.Stat(linger); err != nil {
		changed = true
		fmt.Fprintf(opts.Out, "would enable linger for %s\n", sc.User)
	}
	if !changed {
		fmt.Fprintln(opts.Out, "setup: nothing to change")
	}
	return nil
}
