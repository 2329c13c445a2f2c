package sim

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Isolation mode gives every domain's supervisor (dom0's too) a network
// namespace with only loopback up and a UTS namespace named after the
// domain; the supervisor's processes inherit both. Domains then reach each
// other only through qrexec, as on Qubes where VMs share no network unless a
// netvm routes it. The namespaces are created by the starter
// (CLONE_NEWNET|CLONE_NEWUTS, root only); the supervisor finishes the setup.

// ErrIsolationNeedsRoot is returned by init --isolation for a non-root user.
var ErrIsolationNeedsRoot = errors.New("isolation mode needs root (network namespaces)")

// CheckIsolation reports whether this process can create isolated domains.
func CheckIsolation() error {
	if os.Geteuid() != 0 {
		return ErrIsolationNeedsRoot
	}
	return nil
}

// enterIsolation runs in the fresh namespaces of a supervisor.
func enterIsolation(domain string) error {
	if err := unix.Sethostname([]byte(domain)); err != nil {
		return fmt.Errorf("isolation: set hostname: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return fmt.Errorf("isolation: bring lo up: %w", err)
	}
	return nil
}

// loopbackUp sets IFF_UP on lo, as `ip link set lo up` does.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
