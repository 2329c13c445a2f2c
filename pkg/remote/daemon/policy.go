package daemon

import "strings"

// shellSyntax lists the bytes that give a command line more than one
// meaning: with any of them a restricted VM could chain, substitute or
// redirect its way past the allow list.
const shellSyntax = ";&|$`<>(){}[]*?!~#'\"\\\n\r\t"

// allowed reports whether a restricted VM may run body: one line (a final
// newline aside) without shell syntax, matching one of the patterns in
// full. Patterns use * (any run of bytes) and ? (one byte).
func allowed(body []byte, patterns []string) bool {
	line := strings.TrimSuffix(string(body), "\n")
	line = strings.TrimSpace(line)
	if line == "" || strings.ContainsAny(line, shellSyntax) {
		return false
	}
	for _, p := range patterns {
		if glob(p, line) {
			return true
		}
	}
	return false
}

// glob matches s against p where * matches any run of bytes and ? one byte.
func glob(p, s string) bool {
	// Iterative matcher with backtracking to the last star: linear in
	// practice, no recursion to blow up on hostile input.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
