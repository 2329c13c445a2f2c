// Package programs lists the configuration spec of every qubes-claw binary,
// so the config reference (docs/config.md), the shipped files in configs/ and
// the relocation checks are derived from one place. A new binary adds its Spec
// here; the tests fail until its docs and shipped config exist.
package programs

import (
	"github.com/qubes-claw/qubes-claw/installer/plan"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/connect"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy"
	"github.com/qubes-claw/qubes-claw/pkg/remote/client"
	"github.com/qubes-claw/qubes-claw/pkg/remote/daemon"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
	"github.com/qubes-claw/qubes-claw/pkg/webadmin"
)

// All returns the spec of every configurable program, in documentation order.
func All() []config.Describer {
	return []config.Describer{
		daemon.Spec(),
		client.Spec(),
		llmproxy.Spec(),
		plan.Spec(),
		webadmin.Spec(),
		tunnel.Spec(),
		connect.Spec(),
	}
}
