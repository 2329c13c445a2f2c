package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// hostSystemPath is the host part of every domain's PATH: system directories
// only, so a test's own PATH (Go toolchain, ...) never leaks into a domain.
const hostSystemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// UserHome is the home directory of user inside a domain (a domain path).
func UserHome(user string) string {
	if user == "root" {
		return "/root"
	}
	return "/home/" + user
}

// DomainEnv is the environment of a process running as user in domain: the
// simulator variables, HOME, USER, and a PATH that looks in the domain's
// filesystem first, then the simulated tools, then the host system.
func (m *Machine) DomainEnv(domain, user string) []string {
	if user == "" {
		user = "user"
	}
	bins := m.VMBinDir()
	if domain == Dom0 {
		bins = m.Dom0BinDir()
	}
	var path []string
	if user == "root" {
		path = append(path, m.Path(domain, "/usr/local/sbin"), m.Path(domain, "/usr/sbin"))
	}
	path = append(path, m.Path(domain, "/usr/local/bin"), m.Path(domain, "/usr/bin"), bins, hostSystemPath)
	return []string{
		DirEnv + "=" + m.Dir,
		DomainEnv + "=" + domain,
		RootEnv + "=" + m.Root(domain),
		"HOME=" + m.Path(domain, UserHome(user)),
		"USER=" + user,
		"LOGNAME=" + user,
		"PATH=" + strings.Join(path, ":"),
		"TMPDIR=" + m.Path(domain, "/tmp"),
		"LANG=C.UTF-8",
	}
}

// spawnEnv is DomainEnv plus the SpawnedEnv marker: the environment of a
// process the machine itself starts.
func (m *Machine) spawnEnv(domain, user string) []string {
	return append(m.DomainEnv(domain, user), SpawnedEnv+"="+m.Dir)
}

// mergeEnv returns base with every KEY=VALUE of extra replacing the same key.
func mergeEnv(base []string, extra ...string) []string {
	out := make([]string, 0, len(base)+len(extra))
	idx := map[string]int{}
	for _, kv := range append(append([]string(nil), base...), extra...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// ResolveInRoot maps the domain path p to a host path, following symlinks the
// way the kernel would inside the domain: an absolute link target is
// re-rooted at the domain's root. The last component need not exist.
func (m *Machine) ResolveInRoot(domain, p string) (string, error) {
	root := m.Root(domain)
	return resolveInRoot(root, p)
}

func resolveInRoot(root, p string) (string, error) {
	// pending holds the components still to walk; done is the resolved
	// domain path so far.
	pending := splitPath(p)
	done := "/"
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, c)
		host := filepath.Join(root, next)
		fi, err := os.Lstat(host)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			// A missing component ends the walk: the rest is joined as is.
			done = next
			if err != nil {
				done = filepath.Join(append([]string{done}, pending...)...)
				pending = nil
			}
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("resolve %s: %w", p, unix.ELOOP)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			done = "/"
		}
		pending = append(splitPath(target), pending...)
	}
	return filepath.Join(root, done), nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// errNotFound is an executable missing from the domain and the host.
var errNotFound = errors.New("no such file or directory")

// lookExec finds the host path to execute for argv0 in domain: an absolute
// path is looked up inside the domain's root first, then on the host (for
// /bin/sh and other host tools the domain does not carry); a bare name is
// searched in the PATH of env; a relative path is taken from cwd (host path).
func (m *Machine) lookExec(domain, argv0 string, env []string, cwd string) (string, error) {
	switch {
	case filepath.IsAbs(argv0):
		if p, err := m.ResolveInRoot(domain, argv0); err == nil && isExecutable(p) {
			return p, nil
		}
		if isExecutable(argv0) {
			return argv0, nil
		}
		return "", fmt.Errorf("%s: %w", argv0, errNotFound)
	case strings.Contains(argv0, "/"):
		p := filepath.Join(cwd, argv0)
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s: %w", argv0, errNotFound)
	}
	for _, dir := range filepath.SplitList(envValue(env, "PATH")) {
		if dir == "" {
			continue
		}
		cand := filepath.Join(dir, argv0)
		if d, ok := m.Unmap(domain, cand); ok {
			if p, err := m.ResolveInRoot(domain, d); err == nil {
				cand = p
			}
		}
		if isExecutable(cand) {
			return cand, nil
		}
	}
	return "", fmt.Errorf("%s: command not found", argv0)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && unix.Access(p, unix.X_OK) == nil
}

// defaultUser is the domain's default_user property.
func defaultUser(st *State, d *Domain) string {
	if d == nil {
		return "user"
	}
	if u, _, err := d.Prop(st, "default_user"); err == nil && u != "" {
		return u
	}
	return "user"
}
