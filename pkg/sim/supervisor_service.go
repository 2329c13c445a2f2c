package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Where a domain looks for services and their configs (libqrexec/qrexec.h
// QREXEC_SERVICE_PATH, QUBES_RPC_CONFIG_PATH), in order.
var (
	rpcServicePath = []string{"/run/qubes-rpc", "/usr/local/etc/qubes-rpc", "/etc/qubes-rpc"}
	rpcConfigPath  = []string{"/run/qubes/rpc-config", "/usr/local/etc/qubes/rpc-config", "/etc/qubes/rpc-config"}
)

// serviceEntry is a service found in a domain.
type serviceEntry struct {
	path   string // domain path of the entry (/etc/qubes-rpc/NAME)
	host   string // host path of what it resolves to
	tcp    string // "/dev/tcp..." target of a TCP service symlink
	socket bool
}

var (
	errServiceNotFound = errors.New("service not found")
	errServiceBroken   = errors.New("error finding service")
)

// findFile is libqrexec's find_file: the first directory of dirs holding
// name wins; a symlink to /dev/tcp is returned as such, other symlinks are
// followed (inside the domain root), a dangling one counts as absent.
func (m *Machine) findFile(domain string, dirs []string, name string) (serviceEntry, error) {
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		parent, err := m.ResolveInRoot(domain, dir)
		if err != nil {
			return serviceEntry{}, fmt.Errorf("%w: %s: %v", errServiceBroken, p, err)
		}
		host := filepath.Join(parent, name)
		fi, err := os.Lstat(host)
		if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(host)
			if err != nil {
				return serviceEntry{}, fmt.Errorf("%w: readlink %s: %v", errServiceBroken, p, err)
			}
			if target == "/dev/tcp" || strings.HasPrefix(target, "/dev/tcp/") {
				if target == "/dev/tcp/" {
					return serviceEntry{}, fmt.Errorf("%w: /dev/tcp/ not followed by host", errServiceBroken)
				}
				return serviceEntry{path: p, tcp: target}, nil
			}
			resolved, err := m.ResolveInRoot(domain, p)
			if err != nil {
				return serviceEntry{}, fmt.Errorf("%w: %s: %v", errServiceBroken, p, err)
			}
			host = resolved
			fi, err = os.Stat(host)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return serviceEntry{}, fmt.Errorf("%w: stat %s: %v", errServiceBroken, p, err)
			}
			if err != nil {
				continue
			}
			return serviceEntry{path: p, host: host, socket: fi.Mode()&fs.ModeSocket != 0}, nil
		}
		if err == nil {
			return serviceEntry{path: p, host: host, socket: fi.Mode()&fs.ModeSocket != 0}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return serviceEntry{}, fmt.Errorf("%w: lstat %s: %v", errServiceBroken, p, err)
		}
	}
	return serviceEntry{}, errServiceNotFound
}

// findService is find_qrexec_service: "SERVICE+ARG" in every directory
// first, then "SERVICE" in every directory.
func (m *Machine) findService(domain, service, arg string) (serviceEntry, error) {
	e, err := m.findFile(domain, rpcServicePath, service+"+"+arg)
	if errors.Is(err, errServiceNotFound) {
		e, err = m.findFile(domain, rpcServicePath, service)
	}
	return e, err
}

// skipServiceDescriptor reads skip-service-descriptor from the service's
// rpc-config (qubes-rpc-config/README: key=value, # comments).
func (m *Machine) skipServiceDescriptor(domain, service, arg string) bool {
	e, err := m.findFile(domain, rpcConfigPath, service+"+"+arg)
	if errors.Is(err, errServiceNotFound) {
		e, err = m.findFile(domain, rpcConfigPath, service)
	}
	if err != nil || e.host == "" {
		return false
	}
	f, err := os.Open(e.host)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	skip := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "skip-service-descriptor" {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), "'\"")
		skip = v == "true" || v == "1"
	}
	return skip
}

// handleService runs a qrexec service of this domain for a caller (dom0's
// qrexec-client, or a policy-approved call relayed by a supervisor).
func (s *Supervisor) handleService(c conn, req request, files []*os.File) {
	if req.Service == "" || !validRPCName(req.Service, false) || !validRPCName(req.Arg, true) {
		log.Printf("invalid service call %q+%q", req.Service, req.Arg)
		c.send(reply{Type: repError, Code: ExitProblem})
		return
	}
	desc := req.Service + "+" + req.Arg
	e, err := s.M.findService(s.Domain, req.Service, req.Arg)
	if err != nil {
		// qrexec logs this in the target domain; the caller only sees the code.
		code := ExitProblem
		if errors.Is(err, errServiceNotFound) {
			code = ExitServiceNotFound
			err = fmt.Errorf("Service not found: %s", desc)
		}
		log.Print(err)
		c.send(reply{Type: repError, Code: code})
		return
	}
	if e.tcp != "" || e.socket {
		closeAll(files)
		sock, err := s.connectService(e, req)
		if err != nil {
			log.Printf("service %s: %v", desc, err)
			c.send(reply{Type: repError, Code: ExitProblem})
			return
		}
		defer sock.Close()
		if !s.M.skipServiceDescriptor(s.Domain, req.Service, req.Arg) {
			if _, err := sock.Write([]byte(desc + " " + req.Source + "\x00")); err != nil {
				c.send(reply{Type: repError, Code: ExitProblem})
				return
			}
		}
		c.send(reply{Type: repStream}, sock)
		return
	}
	if !isExecutable(e.host) {
		log.Printf("Unknown service type (not executable, not a socket): %s", e.path)
		c.send(reply{Type: repError, Code: ExitProblem})
		return
	}
	argv := []string{e.path}
	if req.Arg != "" {
		argv = append(argv, req.Arg)
	}
	run := request{Op: opSpawn, Argv: argv, User: req.User, Env: req.Env}
	p, err := s.start(run, files,
		"QREXEC_SERVICE_FULL_NAME="+desc,
		"QREXEC_REMOTE_DOMAIN="+req.Source,
		"QREXEC_SERVICE_ARGUMENT="+req.Arg)
	closeAll(files)
	if err != nil {
		log.Printf("service %s: %v", desc, err)
		c.send(reply{Type: repError, Code: ExitProblem})
		return
	}
	s.follow(c, p)
}

// connectService opens the connection of a socket or /dev/tcp service, from
// inside the domain (its network namespace in isolation mode). It returns
// the socket as a file to hand to the caller.
func (s *Supervisor) connectService(e serviceEntry, req request) (*os.File, error) {
	var nc net.Conn
	var err error
	if e.socket {
		var uc *net.UnixConn
		uc, err = dialUnix("unix", e.host)
		nc = uc
	} else {
		var addr string
		addr, err = tcpServiceAddr(e.tcp, req.Arg)
		if err != nil {
			return nil, err
		}
		nc, err = net.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	f, err := nc.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		return nil, err
	}
	return f, nil
}

// tcpServiceAddr maps a /dev/tcp symlink target and the call argument to the
// address to connect to (libqrexec find_qrexec_service):
// /dev/tcp/HOST/PORT takes no argument, /dev/tcp/HOST takes the port from it,
// /dev/tcp takes HOST+PORT ('+' in HOST stands for ':' of IPv6).
func tcpServiceAddr(target, arg string) (string, error) {
	rest := strings.TrimPrefix(target, "/dev/tcp")
	var host, port string
	hasPort := false
	if strings.HasPrefix(rest, "/") {
		host = rest[1:]
		if h, p, ok := strings.Cut(host, "/"); ok {
			host, port, hasPort = h, p, true
		}
	}
	switch {
	case hasPort:
		if arg != "" {
			return "", fmt.Errorf("unexpected argument %s to service %s", arg, target)
		}
	case arg == "":
		return "", fmt.Errorf("no or empty argument provided, cannot connect to %s", target)
	case host == "":
		i := strings.LastIndexByte(arg, '+')
		if i < 0 {
			return "", fmt.Errorf("no port provided, cannot connect to %s", arg)
		}
		host, port = arg[:i], arg[i+1:]
		if strings.Contains(host, "_") {
			return "", fmt.Errorf("underscore not allowed in hostname %s", host)
		}
		host = strings.ReplaceAll(host, "+", ":")
	default:
		port = arg
	}
	if !validPort(port) {
		return "", fmt.Errorf("invalid port number %s", port)
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil {
		return "", fmt.Errorf("getaddrinfo(%s, %s) failed: not a numeric host", host, port)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// validPort is libqrexec's validate_port: 1..65535, no leading zero.
func validPort(p string) bool {
	if p == "" || p[0] < '1' || p[0] > '9' || len(p) > 5 {
		return false
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return len(p) < 5 || p <= "65535"
}
