package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// ParseListen parses a listen address HOST:PORT whose host is an IP literal.
// Names are refused on purpose: a loopback check on a name would depend on
// name resolution at the moment it runs.
func ParseListen(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address", host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not a port", port)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}
