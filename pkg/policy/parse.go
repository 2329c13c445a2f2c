package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// PolicySuffix is the suffix of loadable policy files (POLICYSUFFIX).
const PolicySuffix = ".policy"

// maxIncludeDepth bounds include nesting so that include cycles fail cleanly.
const maxIncludeDepth = 32

// rule is one policy line.
type rule struct {
	file string
	line int
	text string

	service  string // "" for *
	argument string // with leading '+'; "" for *
	source   token
	target   token
	action   Action

	redirect      *token // target=
	defaultTarget *token // default_target= (ask only)
	user          string
	notify        bool
	autostart     bool
}

// loader accumulates rules while reading files and includes.
type loader struct {
	rules []*rule
	// base is the directory relative include paths resolve against: the
	// directory of the top-level file being loaded (qrexec's policy_path).
	base  string
	depth int
}

// LoadDirs loads the policy directories in qrexec order (§1.1): every loadable
// file of every directory, merged by basename (an earlier directory wins) and
// sorted by basename in C-locale order.
//
// On a configuration error — a syntax error, a missing include, an invalid file
// name or an unreadable directory — LoadDirs returns the error together with a
// non-nil Policy whose Evaluate always fails with that error and whose Explain
// reports it, so that a long-running caller keeps failing closed.
func LoadDirs(dirs ...string) (*Policy, error) {
	p, err := loadDirs(dirs)
	if err != nil {
		return &Policy{err: err}, err
	}
	return p, nil
}

func loadDirs(dirs []string) (*Policy, error) {
	seen := map[string]bool{}
	var files []string
	for _, dir := range dirs {
		paths, err := policyFiles(dir)
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			name := filepath.Base(path)
			if !seen[name] {
				seen[name] = true
				files = append(files, path)
			}
		}
	}
	slices.SortFunc(files, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	l := &loader{}
	for _, path := range files {
		l.base = filepath.Dir(path)
		if err := l.loadFile(path, nil); err != nil {
			return nil, err
		}
	}
	return &Policy{rules: l.rules}, nil
}

// policyFiles is filter_filepaths over one directory: regular *.policy files
// not starting with '.', all-or-nothing on invalid names, sorted.
func policyFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, PolicySuffix) {
			continue
		}
		path := filepath.Join(dir, name)
		// Stat follows symlinks, like pathlib's is_file().
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, path)
	}
	for _, path := range out {
		if !validFilename(filepath.Base(path)) {
			return nil, fmt.Errorf("%w: %s", ErrInvalidFilename, path)
		}
	}
	slices.Sort(out)
	return out, nil
}

func validFilename(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Parse parses one policy file read from r. name is used in error messages
// and Results; relative include paths resolve against its directory. Unlike
// LoadDirs, Parse returns a nil Policy on error.
func Parse(name string, r io.Reader) (*Policy, error) {
	l := &loader{base: filepath.Dir(name)}
	if err := l.parse(name, r, nil); err != nil {
		return nil, err
	}
	return &Policy{rules: l.rules}, nil
}

// serviceScope is the service and argument an !include-service file applies to.
type serviceScope struct{ service, argument string }

func (l *loader) loadFile(path string, scope *serviceScope) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load policy file: %w", err)
	}
	defer f.Close()
	return l.parse(path, f, scope)
}

// parse reads a new-format file (scope == nil, load_policy_file) or an
// old-format !include-service file (load_policy_file_service).
func (l *loader) parse(name string, r io.Reader, scope *serviceScope) error {
	br := bufio.NewReader(r)
	lineno := 0
	for {
		raw, rerr := br.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("read %s: %w", name, rerr)
		}
		if raw == "" && rerr == io.EOF {
			return nil
		}
		lineno++
		if err := l.parseLine(name, lineno, raw, scope); err != nil {
			return err
		}
		if rerr == io.EOF {
			return nil
		}
	}
}

func (l *loader) parseLine(name string, lineno int, raw string, scope *serviceScope) error {
	synErr := func(format string, a ...any) error {
		return &SyntaxError{File: name, Line: lineno, Msg: fmt.Sprintf(format, a...)}
	}
	if !utf8.ValidString(raw) {
		return synErr("invalid UTF-8")
	}
	line := strings.TrimSpace(raw)
	// Only whole-line comments exist; "#" later in a line is a field (§1.2).
	if line == "" || line[0] == '#' {
		return nil
	}
	text := line
	if scope != nil {
		// Compatibility substitutions of load_policy_file_service (§1.4).
		line = strings.ReplaceAll(line, "$include:", "!include ")
		line = strings.ReplaceAll(line, "$", "@")
		line = strings.ReplaceAll(line, ",", " ")
	}
	if strings.HasPrefix(line, "!") {
		return l.directive(name, lineno, strings.Fields(line), scope, synErr)
	}
	fields := strings.Fields(line)
	var r *rule
	var err error
	if scope == nil {
		if len(fields) < 5 {
			return synErr("wrong number of fields")
		}
		r, err = newRule(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5:])
	} else {
		if len(fields) < 3 {
			return synErr("wrong number of fields")
		}
		r, err = newRule(scope.service, scope.argument, fields[0], fields[1], fields[2], fields[3:])
	}
	if err != nil {
		return synErr("%s", err)
	}
	r.file, r.line, r.text = name, lineno, text
	l.rules = append(l.rules, r)
	return nil
}

func (l *loader) directive(name string, lineno int, fields []string, scope *serviceScope, synErr func(string, ...any) error) error {
	dir, params := fields[0], fields[1:]
	want := map[string]int{"!include": 1, "!include-dir": 1, "!include-service": 3, "!compat-4.0": 0}
	n, known := want[dir]
	if !known || (scope != nil && dir != "!include") {
		return synErr("invalid directive")
	}
	if len(params) != n {
		return synErr("invalid number of params")
	}
	if l.depth >= maxIncludeDepth {
		return synErr("includes nested more than %d deep", maxIncludeDepth)
	}
	switch dir {
	case "!compat-4.0":
		return nil // legacy R4.0 policy is not modelled; see package doc
	case "!include-dir":
		path := l.resolve(params[0])
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			return synErr("not a directory: %s", path)
		}
		files, err := policyFiles(path)
		if err != nil {
			return err
		}
		return l.nested(files, nil)
	case "!include-service":
		svc, arg, err := validateServiceArgument(params[0], params[1])
		if err != nil {
			return synErr("%s", err)
		}
		if svc == "" {
			svc = "*" // "* *" scopes the file to every call, as in qrexec
		}
		if arg == "" {
			arg = "*"
		}
		scope = &serviceScope{service: svc, argument: arg}
		params = params[2:]
	}
	// !include, or the file part of !include-service (scope carries over
	// into an !include inside an include-service file).
	path := l.resolve(params[0])
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return synErr("not a file: %s", path)
	}
	l.depth++
	defer func() { l.depth-- }()
	return l.loadFile(path, scope)
}

func (l *loader) nested(files []string, scope *serviceScope) error {
	l.depth++
	defer func() { l.depth-- }()
	for _, f := range files {
		if err := l.loadFile(f, scope); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.base, p)
}

// rpcnameChar is RPCNAME_ALLOWED_CHARSET: A-Za-z0-9 and "+-._".
func rpcnameChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '+' || c == '-' || c == '.' || c == '_'
}

// validateServiceArgument is validate_service_and_argument; "" stands for *.
func validateServiceArgument(service, argument string) (string, string, error) {
	if service == "*" {
		service = ""
	}
	for i := 0; i < len(service); i++ {
		if !rpcnameChar(service[i]) || service[i] == '+' {
			return "", "", fmt.Errorf("service %q contains invalid characters", service)
		}
	}
	if argument == "*" {
		return service, "", nil
	}
	for i := 0; i < len(argument); i++ {
		if !rpcnameChar(argument[i]) {
			return "", "", fmt.Errorf("argument %q contains invalid characters", argument)
		}
	}
	if !strings.HasPrefix(argument, "+") {
		return "", "", fmt.Errorf("argument %q does not start with +", argument)
	}
	if service == "" {
		return "", "", errors.New("only * argument allowed for * service")
	}
	return service, argument, nil
}

// actionParams lists the parameters each action accepts (§1.2).
var actionParams = map[Action][]string{
	Allow: {"target", "user", "notify", "autostart"},
	Ask:   {"target", "default_target", "user", "notify", "autostart"},
	Deny:  {"notify"},
}

func newRule(service, argument, source, target, action string, params []string) (*rule, error) {
	svc, arg, err := validateServiceArgument(service, argument)
	if err != nil {
		return nil, err
	}
	r := &rule{service: svc, argument: arg, autostart: true}
	if r.source, err = parseToken(source, ctxSource); err != nil {
		return nil, err
	}
	if r.target, err = parseToken(target, ctxTarget); err != nil {
		return nil, err
	}
	switch action {
	case "allow":
		r.action = Allow
	case "deny":
		r.action, r.notify = Deny, true
	case "ask":
		r.action = Ask
	default:
		return nil, fmt.Errorf("invalid action: %s", action)
	}
	kv := map[string]string{}
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("invalid action parameter syntax: %q", p)
		}
		if _, dup := kv[k]; dup {
			return nil, fmt.Errorf("parameter given twice: %q", k)
		}
		kv[k] = v
	}
	for k, v := range kv {
		if !slices.Contains(actionParams[r.action], k) {
			return nil, fmt.Errorf("invalid parameter %q for action %s", k, r.action)
		}
		switch k {
		case "notify", "autostart":
			if v != "yes" && v != "no" {
				return nil, fmt.Errorf("%q is %q, but can be only 'yes' or 'no'", k, v)
			}
			if k == "notify" {
				r.notify = v == "yes"
			} else {
				r.autostart = v == "yes"
			}
		case "user":
			r.user = v
		case "target", "default_target":
			t, err := parseToken(v, ctxRedirect)
			if err != nil {
				return nil, err
			}
			if k == "target" {
				r.redirect = &t
			} else {
				r.defaultTarget = &t
			}
		}
	}
	if r.target.kind == tokDefault && r.action == Allow && r.redirect == nil {
		return nil, errors.New("allow action for @default rule must specify target= option")
	}
	return r, nil
}
