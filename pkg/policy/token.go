package policy

import (
	"fmt"
	"slices"
	"strings"
)

// tokenKind enumerates qrexec's VMToken subclasses (parser.py, qubes.md §1.3).
type tokenKind int

const (
	tokLiteral   tokenKind = iota // a qube name
	tokAdminVM                    // dom0 / @adminvm
	tokAnyVM                      // @anyvm: anything but dom0
	tokWildcard                   // *: anything, dom0 included
	tokDefault                    // @default
	tokType                       // @type:CLASS
	tokTag                        // @tag:NAME
	tokDispVM                     // @dispvm
	tokDispVMTpl                  // @dispvm:TEMPLATE
	tokDispVMTag                  // @dispvm:@tag:NAME
)

// tokenContext is where a token appears; each context admits a subset of
// kinds, mirroring qrexec's class hierarchy (Source, Target, Redirect,
// IntendedTarget).
type tokenContext int

const (
	ctxSource tokenContext = iota
	ctxTarget
	ctxRedirect
	ctxIntended
)

var ctxNames = [...]string{"source", "target", "redirect", "intendedtarget"}

var allowedKinds = [...][]tokenKind{
	ctxSource:   {tokLiteral, tokAdminVM, tokAnyVM, tokWildcard, tokType, tokTag, tokDispVMTpl, tokDispVMTag},
	ctxTarget:   {tokLiteral, tokAdminVM, tokAnyVM, tokWildcard, tokDefault, tokType, tokTag, tokDispVM, tokDispVMTpl, tokDispVMTag},
	ctxRedirect: {tokLiteral, tokAdminVM, tokDispVM, tokDispVMTpl},
	ctxIntended: {tokLiteral, tokAdminVM, tokDefault, tokDispVM, tokDispVMTpl},
}

var exactTokens = []struct {
	text string
	kind tokenKind
}{
	{"*", tokWildcard},
	{"@adminvm", tokAdminVM},
	{"@anyvm", tokAnyVM},
	{"@default", tokDefault},
	{"@dispvm", tokDispVM},
}

// Order matters: "@dispvm:" must be tried before "@dispvm:@tag:" and skip
// values starting with '@', exactly like qrexec's prefix loop.
var prefixTokens = []struct {
	prefix string
	kind   tokenKind
}{
	{"@type:", tokType},
	{"@tag:", tokTag},
	{"@dispvm:", tokDispVMTpl},
	{"@dispvm:@tag:", tokDispVMTag},
}

const adminVM = "@adminvm"

// token is a parsed qube specification. text is the canonical form ("dom0"
// becomes "@adminvm"); value is the part after the prefix, or the name.
type token struct {
	kind  tokenKind
	text  string
	value string
}

// parseToken follows VMToken.__new__: "dom0" is an alias of @adminvm, anything
// not starting with '@' (and not "*") is a literal name — so a stray $anyvm is a
// name that never matches (§1.3) — and '@' tokens must be known and allowed in
// the context.
func parseToken(s string, ctx tokenContext) (token, error) {
	if s == "dom0" {
		s = adminVM
	}
	if !strings.HasPrefix(s, "@") && s != "*" {
		return token{kind: tokLiteral, text: s, value: s}, nil
	}
	allowed := allowedKinds[ctx]
	for _, e := range exactTokens {
		if s == e.text && slices.Contains(allowed, e.kind) {
			return token{kind: e.kind, text: s}, nil
		}
	}
	for _, p := range prefixTokens {
		if !slices.Contains(allowed, p.kind) || !strings.HasPrefix(s, p.prefix) {
			continue
		}
		v := s[len(p.prefix):]
		if v == "" {
			return token{}, fmt.Errorf("invalid empty %s token: %q", p.prefix, s)
		}
		if strings.HasPrefix(v, "@") {
			continue // part of a longer prefix, or invalid
		}
		return token{kind: p.kind, text: s, value: v}, nil
	}
	return token{}, fmt.Errorf("invalid %s token: %q", ctxNames[ctx], s)
}

// evalContext is one evaluation: the system and the normalised source.
type evalContext struct {
	sys      System
	source   string // "@adminvm" or a qube name
	service  string
	argument string // with leading '+'
}

func isDom0(name string) bool { return name == "dom0" || name == adminVM }

// domain looks up a qube; dom0 is always known even if sys omits it.
func (c *evalContext) domain(name string) (Domain, bool) {
	if isDom0(name) {
		if d, ok := c.sys["dom0"]; ok {
			return d, true
		}
		return Domain{Name: "dom0", Class: "AdminVM", Running: true}, true
	}
	if strings.HasPrefix(name, "@") {
		return Domain{}, false
	}
	d, ok := c.sys[name]
	return d, ok
}

// dispvmTemplate is DispVM.get_dispvm_template: "@dispvm:" + the source's
// default_dispvm, or "" if it has none.
func (c *evalContext) dispvmTemplate() string {
	d, ok := c.domain(c.source)
	if !ok || d.DefaultDispVM == "" {
		return ""
	}
	return "@dispvm:" + d.DefaultDispVM
}

// match reports whether token t matches other, which is a normalised source or
// intended target: "@adminvm", "@default", "@dispvm", "@dispvm:X" or a name.
func (c *evalContext) match(t token, other string) bool {
	switch t.kind {
	case tokWildcard:
		return true
	case tokAnyVM:
		return !isDom0(other)
	case tokType:
		d, ok := c.domain(other)
		return ok && d.Class == t.value
	case tokTag:
		d, ok := c.domain(other)
		return ok && slices.Contains(d.Tags, t.value)
	case tokDispVMTpl:
		if other == "@dispvm" {
			return t.text == c.dispvmTemplate()
		}
		return t.text == other
	case tokDispVMTag:
		if other == "@dispvm" {
			other = c.dispvmTemplate()
		}
		tpl, ok := strings.CutPrefix(other, "@dispvm:")
		if !ok || strings.HasPrefix(tpl, "@") {
			return false
		}
		d, ok := c.domain(tpl)
		return ok && d.TemplateForDispVMs && slices.Contains(d.Tags, t.value)
	default: // literal, @adminvm, @default, @dispvm compare textually
		return t.text == other
	}
}

// expand lists the targets a token stands for when offering choices for ask
// (_BaseTarget.expand and overrides).
func (c *evalContext) expand(t token) []string {
	var out []string
	names := make([]string, 0, len(c.sys))
	for n := range c.sys {
		names = append(names, n)
	}
	slices.Sort(names)
	switch t.kind {
	case tokLiteral:
		if _, ok := c.sys[t.value]; ok {
			out = append(out, t.value)
		}
	case tokAdminVM, tokDispVM:
		out = append(out, t.text)
	case tokWildcard, tokAnyVM:
		for _, n := range names {
			d := c.sys[n]
			if t.kind == tokWildcard || d.Class != "AdminVM" {
				out = append(out, n)
			}
			if d.TemplateForDispVMs {
				out = append(out, "@dispvm:"+n)
			}
		}
		out = append(out, "@dispvm")
	case tokType, tokTag:
		for _, n := range names {
			d := c.sys[n]
			if (t.kind == tokType && d.Class == t.value) || (t.kind == tokTag && slices.Contains(d.Tags, t.value)) {
				out = append(out, n)
			}
		}
	case tokDispVMTpl:
		if d, ok := c.domain(t.value); ok && d.TemplateForDispVMs {
			out = append(out, t.text)
		}
	case tokDispVMTag:
		for _, n := range names {
			d := c.sys[n]
			if d.TemplateForDispVMs && slices.Contains(d.Tags, t.value) {
				out = append(out, "@dispvm:"+n)
			}
		}
	}
	return out
}
