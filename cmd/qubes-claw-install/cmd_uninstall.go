package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/installer/plan"
	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

// UninstallOptions are the uninstall command's inputs.
type UninstallOptions struct {
	RemoveVMs bool
	DryRun    bool
}

func newUninstallCmd(g *globals) *cobra.Command {
	opts := &UninstallOptions{}
	cmd := &cobra.Command{
		Use:   "uninstall [--remove-vms] [--dry-run]",
		Short: "Undo what the installer did; VMs it created stay unless --remove-vms",
		Long: `uninstall reads the install record (state_file) and undoes exactly what the
installer changed, newest first: disables units it enabled, removes or restores the
files it wrote (policy, qvm-remote key, daemon config), restores features, tags and
properties to the values they had. VMs the installer created are kept (without our
tags, features and services) unless --remove-vms is given.` + exitStatusHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("uninstall takes no arguments")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := g.load()
			if err != nil {
				return err
			}
			if err := plan.Uninstall(cmd.Context(), g.Q, string(cfg.StateFile), opts.RemoveVMs, opts.DryRun, cmd.OutOrStdout()); err != nil {
				return failure(err)
			}
			if opts.DryRun {
				fmt.Fprintln(cmd.OutOrStdout(), "dry run: nothing changed")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.RemoveVMs, "remove-vms", false, "also remove the VMs the installer created")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the steps and change nothing")
	return cmd
}
