package policy

import (
	"errors"
	"fmt"
)

// Action is what a policy rule decides.
type Action int

const (
	// Deny refuses the call. It is the zero value so that a forgotten Result
	// fails closed.
	Deny Action = iota
	// Allow lets the call through to Result.Target.
	Allow
	// Ask requires a user decision; the caller decides how to ask (or refuses).
	Ask
)

// String returns the policy keyword for a: "deny", "allow" or "ask".
func (a Action) String() string {
	switch a {
	case Deny:
		return "deny"
	case Allow:
		return "allow"
	case Ask:
		return "ask"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Domain describes one qube as far as policy evaluation needs it (qrexec's
// system_info).
type Domain struct {
	// Name is the qube name. The System map key is authoritative.
	Name string
	// Class is the Python class name: AdminVM, AppVM, TemplateVM,
	// StandaloneVM or DispVM (matched by @type:CLASS).
	Class string
	// Tags are matched by @tag:NAME and @dispvm:@tag:NAME.
	Tags []string
	// DefaultDispVM is the qube's default_dispvm property: the disposable
	// template used when this qube calls @dispvm. Empty means none.
	DefaultDispVM string
	// TemplateForDispVMs is the template_for_dispvms property; only such
	// qubes are valid in @dispvm:NAME.
	TemplateForDispVMs bool
	// Running reports power_state == Running. It only matters for rules with
	// autostart=no, which refuse targets that are not running. dom0 always
	// counts as running.
	Running bool
}

// System is every known domain, keyed by name, including "dom0".
type System map[string]Domain

// Request is one qrexec call to evaluate.
type Request struct {
	// Service is the service name without argument (e.g. qubes.ConnectTCP).
	Service string
	// Argument is the argument without the leading '+'; "" means none, which
	// qrexec treats exactly like an empty argument.
	Argument string
	// Source is the calling qube ("dom0" for dom0).
	Source string
	// Target is the target as the caller gave it: "" or "@default", a qube
	// name, "dom0"/"@adminvm", "@dispvm" or "@dispvm:TEMPLATE".
	Target string
}

// Result is the outcome of evaluating a Request.
type Result struct {
	// Action is the decision. Ask results are returned as-is: callers decide.
	Action Action
	// Target is the resolved target for Allow: a qube name, "dom0", or
	// "@dispvm:TEMPLATE" (the caller creates the disposable). For Ask it is
	// the default target, if any.
	Target string
	// Targets are the choices for Ask, sorted.
	Targets []string
	// User is the user= parameter ("" = the target's default user).
	User string
	// Autostart is false when the rule says autostart=no.
	Autostart bool
	// Notify tells whether qrexec would notify the user about the decision.
	Notify bool
	// File and Line locate the deciding rule; empty when no rule decided.
	File string
	Line int
	// Rule is the text of the deciding line.
	Rule string
	// Reason explains a Deny in qrexec's words (e.g. "no matching rule found").
	Reason string
}

// SyntaxError is a policy syntax error at a file and line.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("policy syntax error at %s:%d: %s", e.File, e.Line, e.Msg)
}

// ErrInvalidFilename reports a loadable policy file whose name has characters
// outside 0-9a-z_.-; qrexec then refuses every call.
var ErrInvalidFilename = errors.New("invalid policy file name")

// ErrNoPolicy is returned when evaluating through a nil *Policy.
var ErrNoPolicy = errors.New("no policy loaded")

// Policy is a loaded, validated policy: the rules of all files in evaluation
// order. It is immutable and safe for concurrent use.
type Policy struct {
	rules []*rule
	// err is a configuration error that makes every evaluation fail.
	err error
}

// Err returns the configuration error that makes every evaluation of p fail,
// or nil.
func (p *Policy) Err() error {
	if p == nil {
		return ErrNoPolicy
	}
	return p.err
}

// Len returns the number of rules in p.
func (p *Policy) Len() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}
