package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Explanation is the trace of one evaluation: how the request was normalised,
// which rules for the service were looked at and why each did or did not
// match, and the result. It is produced by the same code as Evaluate.
type Explanation struct {
	// Request is the request as given.
	Request Request
	// Argument, Source and Target are the normalised values matched against
	// the rules: "+ARG", "@adminvm" for dom0, "@default" for no target.
	Argument, Source, Target string
	// Notes record normalisation steps worth telling a user (for example an
	// unknown target being treated as @default).
	Notes []string
	// Checks are the rules for this service and argument in evaluation order,
	// up to and including the deciding rule.
	Checks []RuleCheck
	// Result is what Evaluate returns.
	Result Result
	// Err is the configuration error that made evaluation fail, if any.
	Err error
}

// RuleCheck is one rule considered during evaluation.
type RuleCheck struct {
	File string
	Line int
	Rule string
	// Matched is true for the deciding rule.
	Matched bool
	// Mismatch says which column did not match: "source" or "target".
	Mismatch string
}

// String renders e for humans, one fact per line.
func (e Explanation) String() string {
	var b strings.Builder
	r := e.Request
	svc := r.Service + "+" + r.Argument
	fmt.Fprintf(&b, "request: %s from %s to %s\n", svc, e.Request.Source, orDefault(r.Target))
	if e.Err != nil {
		fmt.Fprintf(&b, "policy configuration error, every call is refused: %v\n", e.Err)
		return b.String()
	}
	for _, n := range e.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for _, c := range e.Checks {
		if c.Matched {
			fmt.Fprintf(&b, "%s:%d: matched: %s\n", c.File, c.Line, c.Rule)
		} else {
			fmt.Fprintf(&b, "%s:%d: %s does not match: %s\n", c.File, c.Line, c.Mismatch, c.Rule)
		}
	}
	res := e.Result
	switch res.Action {
	case Allow:
		fmt.Fprintf(&b, "result: allow, target %s", res.Target)
		if res.User != "" {
			fmt.Fprintf(&b, ", user %s", res.User)
		}
		b.WriteString("\n")
	case Ask:
		fmt.Fprintf(&b, "result: ask, choices %s", strings.Join(res.Targets, " "))
		if res.Target != "" {
			fmt.Fprintf(&b, ", default %s", res.Target)
		}
		b.WriteString("\n")
	default:
		fmt.Fprintf(&b, "result: deny: %s\n", res.Reason)
	}
	return b.String()
}

func orDefault(t string) string {
	if t == "" {
		return "@default"
	}
	return t
}

// Evaluate decides req against p (find_matching_rule + action.evaluate). The
// first matching rule in load order wins; no match is a Deny. A non-nil error
// means the policy configuration is unusable and the call must be refused; the
// Result is then a Deny too.
func (p *Policy) Evaluate(req Request, sys System) (Result, error) {
	res, err := p.decide(req, sys, nil)
	return res, err
}

// Explain evaluates req like Evaluate and reports how the decision was made.
func (p *Policy) Explain(req Request, sys System) Explanation {
	e := &Explanation{Request: req}
	e.Result, e.Err = p.decide(req, sys, e)
	return *e
}

func deny(reason string) Result { return Result{Action: Deny, Reason: reason, Notify: true} }

// decide is the single evaluation path; ex, when non-nil, records the trace.
func (p *Policy) decide(req Request, sys System, ex *Explanation) (Result, error) {
	if err := p.Err(); err != nil {
		return deny(err.Error()), err
	}
	note := func(format string, a ...any) {
		if ex != nil {
			ex.Notes = append(ex.Notes, fmt.Sprintf(format, a...))
		}
	}

	// The request as qrexec-policy-daemon builds it (Request.__init__).
	if req.Service == "" || strings.ContainsFunc(req.Service, func(r rune) bool { return r > 0x7f || r == '+' || !rpcnameChar(byte(r)) }) {
		return deny(fmt.Sprintf("invalid service name %q", req.Service)), nil
	}
	arg := "+" + req.Argument
	if strings.ContainsFunc(arg, func(r rune) bool { return r > 0x7f || !rpcnameChar(byte(r)) }) {
		return deny(fmt.Sprintf("invalid argument %q", req.Argument)), nil
	}
	c := &evalContext{sys: sys, source: req.Source, service: req.Service, argument: arg}
	if isDom0(req.Source) {
		c.source = adminVM
	}
	if _, ok := c.domain(c.source); !ok {
		return deny(fmt.Sprintf("unknown source domain %q", req.Source)), nil
	}
	target := req.Target
	if target == "" {
		target = "@default"
	}
	it, err := parseToken(target, ctxIntended)
	if err != nil {
		return deny(fmt.Sprintf("invalid target %q", req.Target)), nil
	}
	switch it.kind {
	case tokLiteral:
		// IntendedTarget.verify: a qube that does not exist becomes @default.
		if _, ok := c.domain(it.value); !ok {
			note("target %q does not exist, treated as @default", req.Target)
			it = token{kind: tokDefault, text: "@default"}
		}
	case tokDispVMTpl:
		if d, ok := c.domain(it.value); !ok || !d.TemplateForDispVMs {
			return deny(fmt.Sprintf("not a template for dispvm: %s", it.value)), nil
		}
	}
	if ex != nil {
		ex.Argument, ex.Source, ex.Target = arg, c.source, it.text
	}

	for _, r := range p.rules {
		if (r.service != "" && r.service != req.Service) || (r.argument != "" && r.argument != arg) {
			continue
		}
		mismatch := ""
		if !c.match(r.source, c.source) {
			mismatch = "source"
		} else if !c.match(r.target, it.text) {
			mismatch = "target"
		}
		if ex != nil {
			ex.Checks = append(ex.Checks, RuleCheck{File: r.file, Line: r.line, Rule: r.text, Matched: mismatch == "", Mismatch: mismatch})
		}
		if mismatch == "" {
			res := p.apply(r, c, it, req.Source, note)
			res.File, res.Line, res.Rule = r.file, r.line, r.text
			return res, nil
		}
	}
	return deny("no matching rule found"), nil
}

// apply is ActionType.evaluate for the matched rule r.
func (p *Policy) apply(r *rule, c *evalContext, intended token, source string, note func(string, ...any)) Result {
	at := fmt.Sprintf("%s:%d", r.file, r.line)
	switch r.action {
	case Deny:
		res := deny("denied by policy " + at)
		res.Notify = r.notify
		return res

	case Allow:
		t := intended
		if r.redirect != nil {
			t = *r.redirect
			// actual_target(...).verify(): a redirect to a missing qube is
			// @default, a redirect to a non-template is refused.
			switch t.kind {
			case tokLiteral:
				if _, ok := c.domain(t.value); !ok {
					t = token{kind: tokDefault, text: "@default"}
				}
			case tokDispVMTpl:
				if d, ok := c.domain(t.value); !ok || !d.TemplateForDispVMs {
					return deny("not a template for dispvm: " + t.value)
				}
			}
		}
		var target string
		switch t.kind {
		case tokDefault:
			return deny(fmt.Sprintf("policy define 'allow' action at %s but no target is specified by caller or policy", at))
		case tokDispVM:
			target = c.dispvmTemplate()
			if target == "" {
				return deny(fmt.Sprintf("policy define 'allow' action to @dispvm at %s but no DispVM base is set for this VM", at))
			}
		case tokAdminVM:
			target = "dom0"
		default:
			target = t.text
		}
		if !r.autostart && !c.allowNoAutostart(target) {
			res := deny(fmt.Sprintf("target %s is denied because it would require autostart", target))
			res.Notify = r.notify
			return res
		}
		if (isDom0(source) && target == "dom0") || source == target {
			return deny("loopback qrexec connection not supported")
		}
		return Result{Action: Allow, Target: target, User: r.user, Autostart: r.autostart, Notify: r.notify}

	default: // Ask
		var targets []string
		if r.redirect != nil {
			targets = []string{c.concrete(r.redirect.text)}
		} else {
			targets = p.targetsForAsk(c, source)
		}
		if !r.autostart {
			targets = slices.DeleteFunc(targets, func(t string) bool { return !c.allowNoAutostart(t) })
		}
		targets = slices.DeleteFunc(targets, func(t string) bool { return t == "" })
		if len(targets) == 0 {
			return deny(fmt.Sprintf("policy define 'ask' action at %s but no target is available to choose from", at))
		}
		res := Result{Action: Ask, Targets: targets, User: r.user, Autostart: r.autostart, Notify: r.notify}
		if r.defaultTarget != nil {
			dt := c.concrete(r.defaultTarget.text)
			if slices.Contains(targets, dt) {
				res.Target = dt
			} else {
				note("default_target=%s is not among the choices and is ignored", r.defaultTarget.text)
			}
		}
		return res
	}
}

// concrete expands @dispvm to the source's disposable template ("" if none)
// and @adminvm to dom0.
func (c *evalContext) concrete(t string) string {
	switch t {
	case "@dispvm":
		return c.dispvmTemplate()
	case adminVM:
		return "dom0"
	}
	return t
}

// allowNoAutostart is ActionType.allow_no_autostart.
func (c *evalContext) allowNoAutostart(target string) bool {
	if isDom0(target) {
		return true
	}
	if strings.HasPrefix(target, "@dispvm") {
		return false
	}
	d, ok := c.domain(target)
	return ok && d.Running
}

// targetsForAsk is collect_targets_for_ask: walk the rules backwards so that
// an earlier deny removes what a later allow/ask added.
func (p *Policy) targetsForAsk(c *evalContext, source string) []string {
	set := map[string]bool{}
	for i := len(p.rules) - 1; i >= 0; i-- {
		r := p.rules[i]
		if (r.service != "" && r.service != c.service) || (r.argument != "" && r.argument != c.argument) {
			continue
		}
		if !c.match(r.source, c.source) {
			continue
		}
		t := r.target
		if r.action != Deny && r.redirect != nil {
			t = *r.redirect
		}
		for _, x := range c.expand(t) {
			if r.action == Deny {
				delete(set, x)
			} else {
				set[x] = true
			}
		}
	}
	if set["@dispvm"] {
		delete(set, "@dispvm")
		if tpl := c.dispvmTemplate(); tpl != "" {
			set[tpl] = true
		}
	}
	if set[adminVM] {
		delete(set, adminVM)
		set["dom0"] = true
	}
	delete(set, source) // loopback calls are not supported (qrexec #951)
	if isDom0(source) {
		delete(set, "dom0")
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
