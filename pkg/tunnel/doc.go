// Package tunnel is qubes-claw-tunnel's engine: it listens on local ports
// (loopback unless configured otherwise) and gives every accepted connection
// its own qrexec channel to a service in a VM, copying bytes both ways with
// half-close. dom0 stays a byte copier: nothing the VM sends is parsed.
//
// Channel setup (a qrexec-client process and the service in the VM) is taken
// off the connection's critical path by a small pool of channels opened ahead
// of use per tunnel; the VM-side handler (pkg/connect) connects to its local
// port only when the first byte arrives, so an idle pooled channel costs the
// server nothing. Each channel still serves exactly one connection. Bytes
// move between the client's socket and the qrexec client's pipes by
// splice(2) (pkg/splice): the daemon never holds them in its own memory.
//
// A VM that cannot be reached (halted, refused, no service) marks its tunnel
// unavailable: connections are then closed at once with a logged reason, and
// the tunnel tries a channel again every retry_interval, so service resumes
// by itself when the VM is back. A halted VM is never started unless
// autostart is set.
//
// Status is served as JSON on a unix socket in the runtime directory
// (Serve, Query).
package tunnel
