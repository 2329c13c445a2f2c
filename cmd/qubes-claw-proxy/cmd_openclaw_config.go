package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy"
	"github.com/qubes-claw/qubes-claw/pkg/openclaw"
)

// exitEdited: the OpenClaw config was edited by hand and left alone.
const exitEdited = 3

// OpenclawConfigOptions are the openclaw-config command's inputs.
type OpenclawConfigOptions struct {
	g          *globals
	Out        io.Writer
	Path       string
	ProviderID string
	Model      string
	Force      bool
}

// AddFlags registers the command's flags.
func (o *OpenclawConfigOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Path, "path", "", "file to write (default $OPENCLAW_CONFIG_PATH, else ~/.openclaw/openclaw.json)")
	fs.StringVar(&o.ProviderID, "provider-id", openclaw.DefaultProviderID, "OpenClaw provider id; model refs become ID/MODEL")
	fs.StringVar(&o.Model, "model", "", "default model (default: the provider's first model)")
	fs.BoolVar(&o.Force, "force", false, "replace a file that was edited by hand (it is kept as FILE.bak)")
}

func newOpenclawConfigCmd(g *globals, runF func(context.Context, *OpenclawConfigOptions) error) *cobra.Command {
	opts := &OpenclawConfigOptions{g: g}
	cmd := &cobra.Command{
		Use:   "openclaw-config",
		Short: "Write OpenClaw's openclaw.json for the configured provider",
		Long: `openclaw-config writes the OpenClaw gateway configuration: a local gateway on
127.0.0.1:18789 with token auth (the token is generated once and kept on later
runs) and one provider pointing at this proxy, with the model list of the
provider selected in the proxy's config. It never writes a provider API key:
the provider's apiKey is the proxy's client token.

A file qubes-claw wrote and nobody changed is updated; a file edited by hand
is left alone and the difference is shown, unless --force is given.` + exitStatusHelp + `
  3    the file was edited by hand and left unchanged`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("openclaw-config takes no arguments")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runOpenclawConfig(cmd.Context(), opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func runOpenclawConfig(_ context.Context, opts *OpenclawConfigOptions) error {
	cfg, _, err := opts.g.load()
	if err != nil {
		return err
	}
	path := opts.Path
	if path == "" {
		path = opts.g.getenv("OPENCLAW_CONFIG_PATH")
	}
	if path == "" {
		path = "~/.openclaw/openclaw.json"
	}
	path = string(config.ResolveEnv(config.Path(path)))

	outcome, err := writeOpenclaw(cfg, path, opts.ProviderID, opts.Model, opts.Force, opts.Out)
	if err != nil {
		return err
	}
	msg := map[openclaw.Outcome]string{openclaw.Created: "wrote", openclaw.Updated: "updated",
		openclaw.Unchanged: "up to date:", openclaw.Overwritten: "replaced (edited file kept as .bak)"}[outcome]
	fmt.Fprintf(opts.Out, "%s %s (provider %s, %d models)\n", msg, path, cfg.Provider, len(cfg.ModelsOf(cfg.Provider)))
	return nil
}

// writeOpenclaw generates openclaw.json for cfg's provider and writes it,
// keeping the gateway token of an existing file. An edited file is left
// alone: the difference goes to out and the error has exit status 3.
func writeOpenclaw(cfg llmproxy.Config, path, providerID, model string, force bool, out io.Writer) (openclaw.Outcome, error) {
	content, err := openclawContent(cfg, path, providerID, model)
	if err != nil {
		return 0, err
	}
	outcome, err := openclaw.Write(path, content, force)
	var edited *openclaw.EditedError
	if errors.As(err, &edited) {
		fmt.Fprintf(out, "--- %s (edited)\n+++ generated\n%s", path, edited.Diff)
		return 0, cli.Exit(exitEdited, "%s was edited by hand and is left unchanged; the difference is above. Re-run with --force to replace it (the edited file is kept as %s.bak)", path, path)
	}
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", path, err)
	}
	return outcome, nil
}

// openclawContent is the openclaw.json that writeOpenclaw would write,
// keeping the gateway token of an existing file.
func openclawContent(cfg llmproxy.Config, path, providerID, model string) ([]byte, error) {
	var models []openclaw.Model
	for _, m := range cfg.ModelsOf(cfg.Provider) {
		models = append(models, openclaw.Model{ID: m.ID, Name: m.Name, Reasoning: m.Reasoning, Images: m.Images,
			ContextWindow: m.ContextWindow, MaxTokens: m.MaxTokens})
	}
	var token string
	if old, err := os.ReadFile(path); err == nil {
		token = openclaw.GatewayToken(old)
	}
	content, err := openclaw.Generate(openclaw.Options{
		ProviderID: providerID, ProxyURL: "http://" + cfg.Listen + "/v1", ProxyToken: cfg.Token.Reveal(),
		Models: models, DefaultModel: model, GatewayToken: token,
	})
	if err != nil {
		return nil, cli.Usagef("%v", err)
	}
	return content, nil
}
