package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy"
)

// exitConfig is returned when the configuration is unusable; the systemd
// unit lists it in RestartPreventExitStatus, since restarting cannot help.
const exitConfig = 78

const exitStatusHelp = `
EXIT STATUS
  0    success (serve: clean shutdown)
  1    failure
  2    bad invocation
  78   configuration error (unknown provider, missing key, bad file); not restarted
  130  interrupted`

// globals carries what every subcommand shares: the config flags.
type globals struct {
	flags *pflag.FlagSet
	spec  config.Spec[llmproxy.Config]
	// getenv reads the environment (tests replace it).
	getenv func(string) string
	// run runs system tools (tests replace it).
	run runner
}

func newRootCmd() *cobra.Command { return newRootCmdWith(execRunner) }

// newRootCmdWith builds the command tree with a tool runner.
func newRootCmdWith(run runner) *cobra.Command {
	g := &globals{spec: llmproxy.Spec(), getenv: osGetenv, run: run}
	root := &cobra.Command{
		Use:   llmproxy.Program,
		Short: "OpenAI-compatible proxy of the qubes-claw agent VM",
		Long: `qubes-claw-proxy serves an OpenAI-compatible API (POST /v1/chat/completions,
GET /v1/models, GET /health) on 127.0.0.1:32125 and forwards each request to the
provider selected by the "provider" key of its config file: openai, anthropic,
ollama or cursor. API keys live only in its config (or $OPENAI_API_KEY,
$ANTHROPIC_API_KEY, $CURSOR_API_KEY); clients authenticate with the bearer token
of the "token" key.` + exitStatusHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.flags = root.PersistentFlags()
	g.spec.AddFlags(g.flags)
	root.AddCommand(newServeCmd(g, nil), newOpenclawConfigCmd(g, nil), newSetupCmd(g, nil), newStatusCmd(g, nil), newWatchGatewayCmd())
	return root
}

// load reads the configuration, applies the conventional key variables and
// marks every failure as a configuration error.
func (g *globals) load() (llmproxy.Config, *config.Loaded, error) {
	cfg, loaded, err := g.spec.Load(g.flags)
	if err != nil {
		return cfg, nil, &cli.Error{Code: exitConfig, Err: err}
	}
	cfg.ApplyEnv(g.getenv)
	return cfg, loaded, nil
}
