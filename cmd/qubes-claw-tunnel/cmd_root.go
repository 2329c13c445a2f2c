package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
)

// exitConfig is returned when the configuration is unusable; the unit lists
// it in RestartPreventExitStatus, since restarting cannot help.
const exitConfig = 78

const exitStatusHelp = `
EXIT STATUS
  0    success (serve: clean shutdown; explain: the call is allowed)
  1    failure (status: the daemon is not running)
  2    bad invocation
  3    explain: the call is denied
  4    explain: the call needs the user's confirmation (ask)
  78   configuration error (bad tunnel, non-loopback listen address, port in use); not restarted
  130  interrupted`

// globals carries what every subcommand shares: the config flags.
type globals struct {
	flags *pflag.FlagSet
	spec  config.Spec[tunnel.Config]
}

func (g *globals) load() (tunnel.Config, *config.Loaded, error) {
	cfg, loaded, err := g.spec.Load(g.flags)
	if err != nil {
		return cfg, nil, &cli.Error{Code: exitConfig, Err: err}
	}
	return cfg, loaded, nil
}

func newRootCmd() *cobra.Command {
	g := &globals{spec: tunnel.Spec()}
	root := &cobra.Command{
		Use:   tunnel.Program,
		Short: "Forward local ports to a VM's ports over qrexec",
		Long: `qubes-claw-tunnel forwards each configured local address (loopback only,
unless allow_non_loopback is set) to a port inside a VM. Every connection gets
its own qrexec channel to the VM's qubes-claw.Connect service: qrexec-client -d
in dom0, which bypasses policy and never starts the VM; qrexec-client-vm in a
client VM, where the qrexec policy decides. Nothing the VM sends is parsed.

  qubes-claw-tunnel serve                 run every tunnel (the systemd unit does)
  qubes-claw-tunnel status                show each tunnel's state and counters
  qubes-claw-tunnel policy render         print the policy file for client VMs
  qubes-claw-tunnel policy explain SOURCE SERVICE+ARG TARGET
                                          which policy line decides a call` + exitStatusHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.flags = root.PersistentFlags()
	g.spec.AddFlags(g.flags)
	root.AddCommand(newServeCmd(g, nil), newStatusCmd(g, nil), newPolicyCmd(g))
	return root
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("%s takes no arguments, got %q", cmd.Name(), args)
	}
	return nil
}
