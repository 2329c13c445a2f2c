package sim

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/policy"
)

// qrexec-client-vm TARGET SERVICE[+ARG] [LOCAL_PROG [ARGS...]]
//
// The call goes to the supervisor of the caller's domain, which plays dom0's
// qrexec-daemon for it: the supervisor identifies the calling domain by the
// caller's process ancestry (environment variables cannot change it),
// evaluates the qrexec policy of dom0 and relays the call to the target.
func qrexecClientVM(c *Call) int {
	args := c.Args
	var filterOut, filterErr bool
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		a := args[0]
		args = args[1:]
		switch a {
		case "--":
			goto positional
		case "-t", "--filter-escape-chars-stdout":
			filterOut = true
		case "-T", "--filter-escape-chars-stderr":
			filterErr = true
		case "--no-filter-escape-chars-stdout":
			filterOut = false
		case "--no-filter-escape-chars-stderr":
			filterErr = false
		case "-h", "--help":
			qrexecClientVMUsage(c.Stdio.Out)
			return 0
		default:
			qrexecClientVMUsage(c.Stdio.Err)
			return 2
		}
	}
positional:
	if len(args) < 2 {
		qrexecClientVMUsage(c.Stdio.Err)
		return 2
	}
	target, desc := args[0], args[1]
	service, arg := splitDescriptor(desc)
	req := request{Op: opTrigger, Target: target, Service: service, Arg: arg}
	o := ioOpts{passIO: true, filterOut: filterOut, filterErr: filterErr}
	domain := c.Domain
	if len(args) > 2 {
		return c.runLocalProgram(domain, req, args[2:], o)
	}
	code, err := c.Machine.call(c.Ctx, domain, req, c.Stdio, o)
	return triggerResult(c, code, err)
}

func triggerResult(c *Call, code int, err error) int {
	if code == ExitRequestRefused {
		fmt.Fprintln(c.Stdio.Err, "Request refused")
		return code
	}
	if err != nil && code == ExitProblem {
		fmt.Fprintf(c.Stdio.Err, "%s: %v\n", c.Name, err)
	}
	return code
}

// runLocalProgram connects LOCAL_PROG's stdin/stdout to the service; its
// exit status is the result (qrexec-client-vm.rst EXIT STATUS). The program
// starts only once the call is allowed, like the real tool does.
func (c *Call) runLocalProgram(domain string, req request, prog []string, o ioOpts) int {
	path := prog[0]
	if filepath.IsAbs(path) {
		if p, err := c.Machine.lookExec(domain, path, os.Environ(), "/"); err == nil {
			path = p
		}
	}
	cmd := exec.Command(path, prog[1:]...)
	cmd.Args[0] = prog[0]
	cmd.Stderr = c.Stdio.Err
	o.local, o.localStatus = cmd, true
	code, err := c.Machine.call(c.Ctx, domain, req, c.Stdio, o)
	if code == ExitRequestRefused || (err != nil && cmd.Process == nil) {
		return triggerResult(c, code, err)
	}
	return code
}

func qrexecClientVMUsage(w *os.File) {
	fmt.Fprintf(w, "usage: qrexec-client-vm [options] target_vmname program_ident [local_program [local program arguments]]\n")
}

// policyDirs are dom0's policy directories, runtime first (it wins on equal
// basenames).
func (m *Machine) policyDirs() []string {
	var dirs []string
	for _, d := range []string{"/run/qubes/policy.d", "/etc/qubes/policy.d"} {
		p := m.Path(Dom0, d)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		}
	}
	return dirs
}

// policySystem is qrexec's system_info over the qubes state.
func (m *Machine) policySystem(st *State) policy.System {
	sys := policy.System{}
	for name, d := range st.Domains {
		dispvm, _, _ := d.Prop(st, "default_dispvm")
		forDispVMs, _ := d.PropBool(st, "template_for_dispvms")
		sys[name] = policy.Domain{
			Name:               name,
			Class:              d.Class,
			Tags:               append([]string(nil), d.Tags...),
			DefaultDispVM:      dispvm,
			TemplateForDispVMs: forDispVMs,
			Running:            name == Dom0 || m.Alive(name),
		}
	}
	return sys
}

// handleTrigger is dom0's side of a VM-initiated call (MSG_TRIGGER_SERVICE):
// policy evaluation with the real source, then the call to the target.
func (s *Supervisor) handleTrigger(c conn, source string, req request, files []*os.File) {
	defer closeAll(files)
	refuse := func(why string) {
		log.Printf("qrexec call %s+%s from %s to %q refused: %s", req.Service, req.Arg, source, req.Target, why)
		c.send(reply{Type: repError, Code: ExitRequestRefused})
	}
	if req.Service == "" || !validRPCName(req.Service, false) || !validRPCName(req.Arg, true) ||
		len(req.Target) > 31 {
		refuse("malformed request")
		return
	}
	st, err := s.M.Load()
	if err != nil {
		refuse(err.Error())
		return
	}
	pol, err := policy.LoadDirs(s.M.policyDirs()...)
	if err != nil {
		refuse(err.Error())
		return
	}
	res, err := pol.Evaluate(policy.Request{Service: req.Service, Argument: req.Arg, Source: source, Target: req.Target}, s.M.policySystem(st))
	if err != nil {
		refuse(err.Error())
		return
	}
	if res.Action != policy.Allow {
		// Nobody answers an ask prompt in the simulator.
		refuse(fmt.Sprintf("%s (%s:%d %s)", res.Action, res.File, res.Line, res.Reason))
		return
	}
	target := res.Target
	if target == "@adminvm" {
		target = Dom0
	}
	if strings.HasPrefix(target, "@dispvm") {
		log.Printf("qrexec call to %s: disposables are not simulated", target)
		c.send(reply{Type: repError, Code: ExitProblem, Msg: "disposable qubes are not simulated"})
		return
	}
	if st.Domain(target) == nil {
		refuse("target does not exist: " + target)
		return
	}
	if target == Dom0 || res.Autostart {
		if err := s.M.EnsureRunning(target); err != nil {
			log.Printf("qrexec call to %s: start: %v", target, err)
			c.send(reply{Type: repError, Code: ExitProblem, Msg: err.Error()})
			return
		}
	} else if !s.M.Alive(target) {
		refuse("target not running and autostart=no")
		return
	}
	svc := request{Op: opService, Service: req.Service, Arg: req.Arg, Source: source, User: res.User, NFDs: len(files)}
	s.relay(c, target, svc, files)
}

// relay forwards req to target's supervisor and every reply back to c.
func (s *Supervisor) relay(c conn, target string, req request, files []*os.File) {
	tc, err := s.M.dial(target)
	if err != nil {
		c.send(reply{Type: repError, Code: ExitProblem, Msg: err.Error()})
		return
	}
	defer tc.Close()
	t := conn{tc}
	if err := t.send(req, files...); err != nil {
		c.send(reply{Type: repError, Code: ExitProblem, Msg: err.Error()})
		return
	}
	closeAll(files)
	// Signals from the caller go to the target.
	go func() {
		for {
			var r request
			fs, err := c.recv(&r)
			closeAll(fs)
			if err != nil {
				return
			}
			t.send(r)
		}
	}()
	for {
		var r reply
		fs, err := t.recv(&r)
		if err != nil {
			if !errors.Is(err, errEOF) {
				log.Printf("relay to %s: %v", target, err)
			}
			c.send(reply{Type: repError, Code: ExitProblem, Msg: "connection to " + target + " lost"})
			return
		}
		err = c.send(r, fs...)
		closeAll(fs)
		if err != nil || r.Type == repExit || r.Type == repError || r.Type == repStream {
			return
		}
	}
}
