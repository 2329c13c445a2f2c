// Package vmsetup holds the pieces of the agent VM's setup (`qubes-claw-proxy
// setup`): the systemd user units of the proxy and the OpenClaw gateway, each
// gated on its Qubes service flag; how the VM's class decides where linger
// must be recorded to survive a reboot; idempotent, owner-preserving file
// writes; and the edit of the user's proxy config that keeps its comments.
//
// The command in cmd/qubes-claw-proxy orders these steps and runs the
// systemd tools; this package runs no command.
package vmsetup
