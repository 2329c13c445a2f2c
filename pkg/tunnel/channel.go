package tunnel

import (
	"context"
	"errors"
	"io"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// Channel is one qrexec channel to a VM service: a byte stream with
// half-close and the exit status of the qrexec client. *qubes.Stream is one.
type Channel interface {
	io.ReadWriter
	// CloseWrite ends the stream towards the VM.
	CloseWrite() error
	// Close tears the channel down and returns its exit status.
	Close() error
	// Done is closed when the qrexec client has exited.
	Done() <-chan struct{}
	// Wait returns the exit status once Done is closed.
	Wait() error
	// Stderr is what the qrexec client (and the service) wrote to stderr.
	Stderr() string
}

// Opener opens channels. arg is the call's argument (the port).
type Opener interface {
	Open(ctx context.Context, vm, service, arg string) (Channel, error)
}

// QrexecOpener opens channels with qrexec-client -d in dom0, or with
// qrexec-client-vm in a VM (VMSide).
type QrexecOpener struct {
	Client *qubes.Client
	VMSide bool
}

// Open implements Opener.
func (o QrexecOpener) Open(ctx context.Context, vm, service, arg string) (Channel, error) {
	var s *qubes.Stream
	var err error
	if o.VMSide {
		s, err = o.Client.OpenQrexecVM(ctx, vm, service, arg)
	} else {
		s, err = o.Client.OpenQrexec(ctx, vm, "", service, arg)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// unreachable tells whether a channel's exit status means the VM or its
// service cannot be reached at all (as opposed to the service refusing one
// connection): qrexec failure (125, VM not running), policy refusal (126),
// no such service (127).
func unreachable(err error) bool {
	return errors.Is(err, qubes.ErrQrexec) || errors.Is(err, qubes.ErrNotRunning) ||
		errors.Is(err, qubes.ErrRefused) || errors.Is(err, qubes.ErrNoService)
}

// describeExit says in a few words why a channel ended badly.
func describeExit(err error) string {
	switch {
	case errors.Is(err, qubes.ErrNotRunning):
		return "vm not running"
	case errors.Is(err, qubes.ErrRefused):
		return "refused by qrexec policy"
	case errors.Is(err, qubes.ErrNoService):
		return "service not installed in the vm"
	case errors.Is(err, qubes.ErrQrexec):
		return "qrexec failure (vm not running?)"
	}
	var ce *qubes.CommandError
	switch {
	case errors.As(err, &ce) && ce.ExitCode > 128:
		return "vm's service killed (vm shutting down?)"
	case errors.As(err, &ce) && ce.ExitCode > 0:
		return "refused by the vm's service"
	}
	return "channel failed"
}
