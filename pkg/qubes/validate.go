package qubes

import (
	"fmt"
	"strings"
)

func charsetOK(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func invalid(what, v string) error {
	return fmt.Errorf("%w: %s %q", ErrInvalid, what, v)
}

// ValidateVMName checks a qube name the way qubes-core-admin's validate_name
// does: a letter, then letters, digits, '_', '.', '-', at most 31 characters.
func ValidateVMName(name string) error {
	if name == "" || len(name) > 31 || !('a' <= name[0] && name[0] <= 'z' || 'A' <= name[0] && name[0] <= 'Z') ||
		!charsetOK(name, func(c byte) bool { return alnum(c) || c == '_' || c == '.' || c == '-' }) {
		return invalid("vm name", name)
	}
	return nil
}

// validateTarget accepts what qrexec-client-vm takes as a target (§1.7):
// "" (= @default), @default, @adminvm, dom0, @dispvm, @dispvm:NAME or a name.
func validateTarget(t string) error {
	switch t {
	case "", "@default", "@adminvm", "@dispvm":
		return nil
	}
	if tpl, ok := strings.CutPrefix(t, "@dispvm:"); ok {
		return ValidateVMName(tpl)
	}
	return ValidateVMName(t)
}

// ValidateService checks a qrexec service name (RPCNAME charset without '+').
func ValidateService(s string) error {
	if s == "" || len(s) > 64 || s[0] == '-' ||
		!charsetOK(s, func(c byte) bool { return alnum(c) || c == '.' || c == '_' || c == '-' }) {
		return invalid("service", s)
	}
	return nil
}

// ValidateArgument checks a qrexec service argument (without the leading
// '+'); the empty argument is valid.
func ValidateArgument(a string) error {
	if len(a) > 64 || !charsetOK(a, func(c byte) bool { return alnum(c) || c == '+' || c == '.' || c == '_' || c == '-' }) {
		return invalid("argument", a)
	}
	return nil
}

// validateUser accepts DEFAULT and ordinary account names.
func validateUser(u string) error {
	if u == "" || len(u) > 32 || u[0] == '-' ||
		!charsetOK(u, func(c byte) bool { return alnum(c) || c == '_' || c == '.' || c == '-' }) {
		return invalid("user", u)
	}
	return nil
}

// validateIdent is for property and feature names: non-empty, not an option,
// letters, digits and "._-" only.
func validateIdent(what, s string) error {
	if s == "" || s[0] == '-' || !charsetOK(s, func(c byte) bool { return alnum(c) || c == '.' || c == '_' || c == '-' }) {
		return invalid(what, s)
	}
	return nil
}

// ValidateTag checks a tag (qubes-core-admin Tags.validate_tag: A-Za-z0-9_-).
// A leading '-' is refused as well, because qvm-tags would take it for an
// option.
func ValidateTag(t string) error {
	if t == "" || t[0] == '-' || !charsetOK(t, func(c byte) bool { return alnum(c) || c == '_' || c == '-' }) {
		return invalid("tag", t)
	}
	return nil
}

// validateServiceFlag checks a qvm-service name: at most 48 bytes, no '/', not
// "." or ".." (qubes/ext/services.py), and not an option.
func validateServiceFlag(s string) error {
	if s == "" || len(s) > 48 || s[0] == '-' || s == "." || s == ".." || strings.ContainsAny(s, "/\x00 \t\n") {
		return invalid("service flag", s)
	}
	return nil
}

// validateValue refuses what cannot travel as one argv element.
func validateValue(what, v string) error {
	if strings.ContainsRune(v, 0) {
		return invalid(what, v)
	}
	return nil
}
