package sim

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

const qrexecClientUsage = `usage: %s [options] -d domain_name [-l local_prog|-c request_id,src_domain_name,src_domain_id|-e] user:remote_cmdline
Options:
  -h, --help - display usage
  -e - exit after sending cmd
  -E, --no-exit-code - always exit with 0 after command exits
  -t - enables replacing problematic bytes with '_' in command output, -T is the same for stderr
  -W - waits for connection end even in case of VM-VM (-c)
  -c - connect to existing process (response to trigger service call)
  -w timeout - override default connection timeout of 5s (set 0 for no timeout)
  -k - kill the domain right before exiting
  --socket-dir=PATH -  directory for qrexec socket, default: /var/run/qubes
  -p PREFIX-DATA, --prefix-data=PREFIX-DATA - send the given data before the provided stdin (can only be used once)
  --use-stdin-socket - use fd 0 (which must be socket) for both stdin and stdout
`

// shellCommand is a local command run with /bin/sh -c (qrexec-client -l,
// qvm-run --localcmd).
func shellCommand(cmd string, stderr *os.File) *exec.Cmd {
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Stderr = stderr
	return c
}

// qrexecClient is dom0's qrexec-client (daemon/qrexec-client.c): it never
// starts the domain, bypasses policy, and passes the remote exit status.
func qrexecClient(c *Call) int {
	usage := func(status int) int {
		w := c.Stdio.Err
		if status == 0 {
			w = c.Stdio.Out
		}
		fmt.Fprintf(w, qrexecClientUsage, c.Name)
		return status
	}
	var (
		domain, localCmd, prefix string
		hasPrefix, justExec      bool
		exitWithCode             = true
		filterOut, filterErr     bool
		kill, connectID          bool
		pos                      []string
	)
	args := c.Args
	// getopt_long with GNU permutation: options may follow the command.
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a, "=")
			needVal := func() (string, bool) {
				if hasVal {
					return val, true
				}
				if i+1 < len(args) {
					i++
					return args[i], true
				}
				return "", false
			}
			switch name {
			case "--help":
				return usage(0)
			case "--no-exit-code":
				exitWithCode = false
			case "--socket-dir":
				if _, ok := needVal(); !ok {
					return usage(0)
				}
			case "--prefix-data":
				v, ok := needVal()
				if !ok || hasPrefix {
					return usage(2)
				}
				prefix, hasPrefix = v, true
			case "--use-stdin-socket":
				return c.Errorf(2, "--use-stdin-socket is not simulated")
			default:
				fmt.Fprintf(c.Stdio.Err, "%s: unrecognized option '%s'\n", c.Name, a)
				return usage(0)
			}
			continue
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			opt := a[j]
			if strings.IndexByte("dlcpw", opt) >= 0 {
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						fmt.Fprintf(c.Stdio.Err, "%s: option requires an argument -- '%c'\n", c.Name, opt)
						return usage(0)
					}
					i++
					val = args[i]
				}
				switch opt {
				case 'd':
					domain = val
				case 'l':
					localCmd = val
				case 'c':
					connectID = true
				case 'p':
					if hasPrefix {
						return usage(2)
					}
					prefix, hasPrefix = val, true
				case 'w':
					if val[0] < '0' || val[0] > '9' {
						return c.Errorf(1, "connection timeout '%s' does not start with an ASCII digit", val)
					}
					for _, ch := range val {
						if ch < '0' || ch > '9' {
							return c.Errorf(1, "trailing junk '%s' after connection timeout", val[strings.IndexRune(val, ch):])
						}
					}
				}
				break
			}
			switch opt {
			case 'e':
				justExec = true
			case 'E':
				exitWithCode = false
			case 't':
				filterOut = true
			case 'T':
				filterErr = true
			case 'W':
			case 'k':
				kill = true
			case 'h':
				return usage(0)
			default:
				fmt.Fprintf(c.Stdio.Err, "%s: invalid option -- '%c'\n", c.Name, opt)
				return usage(0)
			}
		}
	}
	if len(pos) == 0 || domain == "" {
		return usage(1)
	}
	cmdline := pos[0]
	n := 0
	for _, b := range []bool{justExec, connectID, localCmd != ""} {
		if b {
			n++
		}
	}
	if n > 1 {
		fmt.Fprintln(c.Stdio.Err, "ERROR: only one of -e, -l, -c can be specified")
		return usage(1)
	}
	if connectID {
		// -c answers a VM-initiated call; the simulator's supervisors do that
		// themselves.
		return c.Errorf(ExitProblem, "-c (connect to existing process) is not simulated")
	}
	m := c.Machine
	o := ioOpts{passIO: true, prefix: []byte(prefix), filterOut: filterOut, filterErr: filterErr, justExec: justExec}
	if localCmd != "" {
		o.local = shellCommand(localCmd, c.Stdio.Err)
	}
	result := func(code int) int {
		if kill && domain != Dom0 {
			_ = m.StopDomain(domain, true)
		}
		if !exitWithCode {
			return 0
		}
		return code
	}

	if domain == Dom0 || domain == "@adminvm" {
		if localCmd != "" {
			fmt.Fprintf(c.Stdio.Err, "%s: dom0 -> dom0 qrexec calls with LOCAL_COMMAND not yet implemented\n", c.Name)
			return c.Errorf(ExitProblem, "please file an issue if you need this")
		}
		rest, ok := strings.CutPrefix(cmdline, "DEFAULT:")
		if !ok {
			return c.Errorf(ExitProblem, "dom0 -> dom0 commands must be prefixed with DEFAULT:")
		}
		req, err := parseRemoteCmdline("DEFAULT:" + rest)
		if err != nil {
			c.logErr("%v", err)
			return result(ExitProblem)
		}
		if req.Op != opService {
			c.logErr("For dom0 -> dom0 commands, only proper qrexec calls are allowed")
			return result(ExitProblem)
		}
		// dom0 always runs; its supervisor owns the service process.
		if err := m.EnsureRunning(Dom0); err != nil {
			c.logErr("%v", err)
			return result(ExitProblem)
		}
		if _, err := m.findService(Dom0, req.Service, req.Arg); err != nil {
			if err == errServiceNotFound {
				c.logErr("Service not found: %s+%s", req.Service, req.Arg)
				return result(ExitServiceNotFound)
			}
			c.logErr("%v", err)
			return result(ExitProblem)
		}
		code, err := m.call(c.Ctx, Dom0, req, c.Stdio, o)
		return result(c.remoteResult(code, err))
	}

	if !m.Alive(domain) {
		c.logErr("connect /var/run/qubes/qrexec.%s: No such file or directory", domain)
		return result(ExitProblem)
	}
	req, err := parseRemoteCmdline(cmdline)
	if err != nil {
		// The agent in the VM rejects it; the caller sees the code only.
		return result(ExitProblem)
	}
	code, err := m.call(c.Ctx, domain, req, c.Stdio, o)
	return result(c.remoteResult(code, err))
}

// remoteResult reports a transport failure of a remote call.
func (c *Call) remoteResult(code int, err error) int {
	if err != nil && code == ExitProblem {
		c.logErr("%v", err)
	}
	return code
}

// logErr prints like libqrexec's LOG(ERROR): "prog[pid]: message".
func (c *Call) logErr(format string, a ...any) {
	fmt.Fprintf(c.Stdio.Err, "%s[%d]: %s\n", c.Name, os.Getpid(), fmt.Sprintf(format, a...))
}

// parseRemoteCmdline parses qrexec's "USER:COMMAND" where COMMAND is
// "QUBESRPC SERVICE+ARG SOURCE" or a shell command line; an optional
// "nogui:" follows the user (libqrexec parse_qubes_rpc_command).
func parseRemoteCmdline(cmdline string) (request, error) {
	user, rest, ok := strings.Cut(cmdline, ":")
	if !ok {
		return request{}, fmt.Errorf("Bad command from dom0 (%s): no colon", cmdline)
	}
	rest = strings.TrimPrefix(rest, "nogui:")
	if rpc, ok := strings.CutPrefix(rest, "QUBESRPC"); ok && (rpc == "" || rpc[0] == ' ') {
		if rpc == "" {
			return request{}, fmt.Errorf("\"QUBESRPC\" not followed by space")
		}
		rpc = rpc[1:]
		desc, source, ok := strings.Cut(rpc, " ")
		if !ok {
			return request{}, fmt.Errorf("No space found after service descriptor")
		}
		if desc == "" {
			return request{}, fmt.Errorf("Service descriptor is empty (too many spaces after QUBESRPC?)")
		}
		if source == "" {
			return request{}, fmt.Errorf("Source domain is empty (too many spaces after service descriptor?)")
		}
		svc, arg := splitDescriptor(desc)
		if svc == "" {
			return request{}, fmt.Errorf("Service name empty")
		}
		return request{Op: opService, Service: svc, Arg: arg, Source: source, User: user}, nil
	}
	return request{Op: opSpawn, Argv: []string{rest}, Shell: true, User: user,
		Env: []string{"QREXEC_REMOTE_DOMAIN=" + Dom0}}, nil
}
