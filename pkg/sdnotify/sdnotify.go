// Package sdnotify implements the client side of systemd's sd_notify
// protocol: READY=1, STOPPING=1, WATCHDOG=1 and STATUS= datagrams sent to
// $NOTIFY_SOCKET, and the watchdog interval systemd asks for through
// $WATCHDOG_USEC. Outside a Type=notify unit every call is a no-op.
package sdnotify

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Well-known states (sd_notify(3)).
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Notifier sends states to one notify socket.
type Notifier struct {
	socket string
}

// FromEnv returns a notifier for $NOTIFY_SOCKET (nil when unset: not under
// a Type=notify unit). Notify on a nil notifier does nothing.
func FromEnv() *Notifier {
	s := os.Getenv("NOTIFY_SOCKET")
	if s == "" {
		return nil
	}
	return &Notifier{socket: s}
}

// Notify sends the newline-separated states in one datagram. "@" at the
// start of the socket name selects the abstract namespace, as in systemd.
func (n *Notifier) Notify(states ...string) error {
	if n == nil {
		return nil
	}
	name := n.socket
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(strings.Join(states, "\n")))
	return err
}

// Notify sends one state to $NOTIFY_SOCKET, reporting whether it was sent
// (false, nil outside systemd).
func Notify(state string) (bool, error) {
	n := FromEnv()
	if n == nil {
		return false, nil
	}
	if err := n.Notify(state); err != nil {
		return false, err
	}
	return true, nil
}

// Status returns a STATUS= line.
func Status(s string) string { return "STATUS=" + strings.ReplaceAll(s, "\n", " ") }

// ErrNoWatchdog is returned by WatchdogInterval when systemd asked for no
// watchdog for this process.
var ErrNoWatchdog = errors.New("no watchdog requested")

// WatchdogInterval returns how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends, so one late ping
// does not get the service killed. $WATCHDOG_PID, when set, must be ours.
func WatchdogInterval() (time.Duration, error) {
	us := os.Getenv("WATCHDOG_USEC")
	if us == "" {
		return 0, ErrNoWatchdog
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, ErrNoWatchdog
	}
	v, err := strconv.ParseUint(us, 10, 63)
	if err != nil || v == 0 {
		return 0, errors.New("bad $WATCHDOG_USEC " + strconv.Quote(us))
	}
	return time.Duration(v) * time.Microsecond / 2, nil
}

// Keepalive sends WATCHDOG=1 every interval while probe succeeds, until ctx
// ends. A failing probe skips the ping, so a service whose health check
// keeps failing is killed and restarted by systemd's watchdog rather than
// by a shell loop; onFail, if not nil, learns of each failure.
func (n *Notifier) Keepalive(ctx context.Context, interval time.Duration, probe func(context.Context) error, onFail func(error)) {
	if n == nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := probe(pctx)
		cancel()
		if err == nil {
			_ = n.Notify(Watchdog)
		} else if onFail != nil && ctx.Err() == nil {
			onFail(err)
		}
	}
}
