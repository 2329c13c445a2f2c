package sim

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A domain's filesystem is a plain directory tree (Machine.Root). Qubes keeps
// an AppVM's /home, /rw and /usr/local on its private volume and takes
// everything else from the template's root volume as a snapshot that is
// discarded at shutdown (qubes.md §2.4); TemplateVMs and StandaloneVMs own
// their whole root. The simulator reproduces that by rebuilding the volatile
// part of the tree at every start (ResetVolatile).

// persistentDirs are the parts of an AppVM that survive a restart (§2.4:
// /rw/home is bind-mounted on /home, /rw/usrlocal on /usr/local).
var persistentDirs = []string{"home", "rw", "usr/local"}

// vmSkeleton is the directory layout of a fresh TemplateVM or StandaloneVM
// root: the places qubes-claw and the Qubes agent read or write. Modes that
// differ from 0755 are given explicitly.
var vmSkeleton = []struct {
	path string
	mode fs.FileMode
}{
	{"etc/qubes-rpc", 0o755},
	{"etc/qubes/rpc-config", 0o755},
	{"etc/qubes/post-install.d", 0o755},
	{"etc/qubes-bind-dirs.d", 0o755},
	{"etc/systemd/system", 0o755},
	{"etc/systemd/user", 0o755},
	{"etc/default", 0o755},
	{"usr/bin", 0o755},
	{"usr/sbin", 0o755},
	{"usr/lib/qubes", 0o755},
	{"usr/lib/systemd/system", 0o755},
	{"usr/lib/systemd/user", 0o755},
	{"usr/lib/systemd/system-preset", 0o755},
	{"usr/lib/qubes-bind-dirs.d", 0o755},
	{"usr/local/bin", 0o755},
	{"usr/local/etc/qubes-rpc", 0o755},
	{"usr/local/etc/qubes/rpc-config", 0o755},
	{"usr/local/lib/systemd/system", 0o755},
	{"var/lib/systemd/linger", 0o755},
	{"var/log", 0o755},
	{"var/tmp", 0o777 | fs.ModeSticky},
	{"tmp", 0o777 | fs.ModeSticky},
	{"root", 0o700},
	{"home/user", 0o700},
	{"rw/config/rc.local.d", 0o755},
	{"rw/config/qubes-bind-dirs.d", 0o755},
	{"rw/bind-dirs", 0o755},
	{"run", 0o755},
}

// dom0Skeleton is dom0's layout (qubes.md §1.1, §6): policy directories are
// group-writable for the qubes group, /run/qubes and /var/log/qubes are 2770.
var dom0Skeleton = []struct {
	path string
	mode fs.FileMode
}{
	{"etc/qubes/policy.d", 0o775},
	{"etc/qubes/policy.d/include", 0o775},
	{"etc/qubes-rpc", 0o755},
	{"etc/qubes/rpc-config", 0o755},
	{"etc/qubes/backup", 0o755},
	{"etc/systemd/system", 0o755},
	{"etc/systemd/system/multi-user.target.wants", 0o755},
	{"etc/default", 0o755},
	{"usr/bin", 0o755},
	{"usr/lib/qubes", 0o755},
	{"usr/lib/systemd/system", 0o755},
	{"usr/lib/systemd/system-preset", 0o755},
	{"usr/local/bin", 0o755},
	{"var/lib/qubes", 0o755},
	{"var/log/qubes", 0o770 | fs.ModeSetgid},
	{"var/tmp", 0o777 | fs.ModeSticky},
	{"tmp", 0o777 | fs.ModeSticky},
	{"root", 0o700},
	{"home/user", 0o700},
	{"srv", 0o755},
	{"run", 0o755},
	{"run/qubes", 0o770 | fs.ModeSetgid},
}

// CreateMachine creates a new simulated machine in dir: machine.json, the
// qubes state holding only dom0 (AdminVM, qid 0, label black, running) and
// dom0's filesystem skeleton. It starts no process. dir may exist but must
// not already hold a machine.
func CreateMachine(dir string, info Info) (*Machine, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "machine.json")); err == nil {
		return nil, fmt.Errorf("create machine: %s already holds a machine", abs)
	}
	if info.Version == 0 {
		info.Version = 1
	}
	if info.ID == "" {
		var b [6]byte
		if _, err := randomBytes(b[:]); err != nil {
			return nil, fmt.Errorf("create machine: %w", err)
		}
		info.ID = hex.EncodeToString(b[:])
	}
	m := &Machine{Dir: abs, Info: info}
	for _, d := range []string{abs, m.Dom0BinDir(), m.VMBinDir(), m.RunDir(), filepath.Dir(m.InvocationLog()), filepath.Join(abs, "domains")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create machine: %w", err)
		}
	}
	st := &State{
		Version: 1,
		NextQID: 1,
		Domains: map[string]*Domain{Dom0: {
			Name:  Dom0,
			Class: AdminVM,
			QID:   0,
			UUID:  "00000000-0000-0000-0000-000000000000",
			Props: map[string]string{"label": "black"},
			Power: Running,
		}},
	}
	if err := makeSkeleton(m.Root(Dom0), dom0Skeleton); err != nil {
		return nil, fmt.Errorf("create machine: dom0 filesystem: %w", err)
	}
	// qubes-core-dom0 ships the autostart unit that qvm-prefs autostart links.
	if err := os.WriteFile(m.Path(Dom0, "/usr/lib/systemd/system/qubes-vm@.service"), []byte(autostartUnit), 0o644); err != nil {
		return nil, fmt.Errorf("create machine: %w", err)
	}
	// qubes-core-admin ships qubesd.service, enabled by its preset; dom0
	// units order themselves After= it and may Require= it (qubes.md §6).
	if err := os.WriteFile(m.Path(Dom0, "/usr/lib/systemd/system/qubesd.service"), []byte(qubesdUnit), 0o644); err != nil {
		return nil, fmt.Errorf("create machine: %w", err)
	}
	if err := os.Symlink("/usr/lib/systemd/system/qubesd.service", m.Path(Dom0, "/etc/systemd/system/multi-user.target.wants/qubesd.service")); err != nil {
		return nil, fmt.Errorf("create machine: %w", err)
	}
	// The state is written under the lock like every later update, so a
	// concurrent reader never sees a half-made machine.
	if err := m.locked(unix.LOCK_EX, func() error { return m.writeState(st) }); err != nil {
		return nil, fmt.Errorf("create machine: %w", err)
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, err
	}
	// machine.json last: its presence is what makes dir a machine.
	if err := WriteFileAtomic(filepath.Join(abs, "machine.json"), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("create machine: %w", err)
	}
	return m, nil
}

func makeSkeleton(root string, dirs []struct {
	path string
	mode fs.FileMode
}) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, d := range dirs {
		p := filepath.Join(root, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		// Chmod, not MkdirAll's mode: the umask must not weaken 0775/1777.
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	return nil
}

// InitDomainFS creates the filesystem of a newly created domain d (qvm-create):
//   - TemplateVM and StandaloneVM: the root skeleton (a StandaloneVM created
//     without a template has an empty root, qubes.md §3.3);
//   - AppVM: /home and /usr/local initialised from the template's (as the
//     agent does from /home.orig and /usr/local.orig at first boot), a fresh
//     /rw/config, and the volatile rest built from the template;
//   - DispVM: its tree is rebuilt entirely at every start; it is built once
//     here so it can be inspected before the first start.
func (m *Machine) InitDomainFS(st *State, d *Domain) error {
	return m.initDomainFS(st, d, "")
}

// CloneDomainFS creates the filesystem of a new StandaloneVM d as a clone of
// domain src's root (qvm-create --standalone -t SRC, which Qubes implements
// with clone_vm). The source's /rw is left out: it lives on the private
// volume, which clone_vm does not copy for qvm-create.
func (m *Machine) CloneDomainFS(st *State, d *Domain, src string) error {
	if src == "" {
		return fmt.Errorf("clone filesystem of %s: no source", d.Name)
	}
	return m.initDomainFS(st, d, src)
}

func (m *Machine) initDomainFS(st *State, d *Domain, cloneFrom string) error {
	root := m.Root(d.Name)
	if _, err := os.Lstat(root); err == nil {
		return fmt.Errorf("init filesystem of %s: %s already exists", d.Name, root)
	}
	fail := func(err error) error {
		_ = os.RemoveAll(m.DomainDir(d.Name))
		return fmt.Errorf("init filesystem of %s: %w", d.Name, err)
	}
	switch d.Class {
	case TemplateVM:
		if err := makeSkeleton(root, vmSkeleton); err != nil {
			return fail(err)
		}
	case StandaloneVM:
		if src := cloneFrom; src != "" {
			if st.Domain(src) == nil {
				return fail(fmt.Errorf("no such template %q", src))
			}
			skip := func(rel string) bool { return rel == "rw" || rel == "run" }
			if err := copyTree(m.Root(src), root, skip); err != nil {
				return fail(err)
			}
		}
		if err := makeSkeleton(root, vmSkeleton); err != nil {
			return fail(err)
		}
	case AppVM:
		t := templateOf(st, d)
		if t == nil {
			return fail(fmt.Errorf("no template"))
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			return fail(err)
		}
		for _, p := range []string{"home", "usr/local"} {
			if err := copyTree(filepath.Join(m.Root(t.Name), p), filepath.Join(root, p), nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fail(err)
			}
		}
		if err := makeSkeleton(root, []struct {
			path string
			mode fs.FileMode
		}{{"home/user", 0o700}, {"usr/local", 0o755}, {"rw/config/rc.local.d", 0o755}, {"rw/config/qubes-bind-dirs.d", 0o755}, {"rw/bind-dirs", 0o755}}); err != nil {
			return fail(err)
		}
		if err := m.ResetVolatile(st, d); err != nil {
			return fail(err)
		}
	case DispVM:
		if err := m.ResetVolatile(st, d); err != nil {
			return fail(err)
		}
	default:
		return fmt.Errorf("init filesystem of %s: class %s has no filesystem of its own", d.Name, d.Class)
	}
	return nil
}

// ResetVolatile rebuilds what a domain loses at shutdown; the runtime calls it
// at every start, before anything runs in the domain:
//   - every class: /run is emptied;
//   - AppVM: everything except /home, /rw and /usr/local is replaced by the
//     template's current root — so /etc, /var (linger in
//     /var/lib/systemd/linger included) and /usr changes are lost (§2.4);
//   - DispVM: everything is rebuilt; the private parts come from its
//     disposable template (an AppVM), the rest from that AppVM's template.
//
// Copy cost: templates may hold tens of MB of binaries and a start must take
// milliseconds, so files of largeFile bytes or more are not copied. They are
// reflinked (copy-on-write, safe) where the filesystem supports it, else
// hardlinked to the template's inode. A hardlink is shared: writing such a
// file *in place* inside the AppVM would also change the template. Nothing in
// the simulator does that (installers replace files by rename, which breaks
// the link), and the alternative — copying every binary at every start — costs
// far more than the hazard. Small files (configs, units, scripts, the things
// tests edit) are always real copies.
func (m *Machine) ResetVolatile(st *State, d *Domain) error {
	root := m.Root(d.Name)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("reset %s: %w", d.Name, err)
	}
	switch d.Class {
	case AppVM:
		t := templateOf(st, d)
		if t == nil {
			return fmt.Errorf("reset %s: template %q not found", d.Name, d.Props["template"])
		}
		if err := removeExcept(root, persistentDirs); err != nil {
			return fmt.Errorf("reset %s: %w", d.Name, err)
		}
		if err := copyTree(m.Root(t.Name), root, skipPersistent); err != nil {
			return fmt.Errorf("reset %s from %s: %w", d.Name, t.Name, err)
		}
	case DispVM:
		dvm := templateOf(st, d)
		if dvm == nil {
			return fmt.Errorf("reset %s: template %q not found", d.Name, d.Props["template"])
		}
		base := templateOf(st, dvm)
		if base == nil {
			return fmt.Errorf("reset %s: template of %s not found", d.Name, dvm.Name)
		}
		if err := removeExcept(root, nil); err != nil {
			return fmt.Errorf("reset %s: %w", d.Name, err)
		}
		for _, p := range persistentDirs {
			err := copyTree(filepath.Join(m.Root(dvm.Name), p), filepath.Join(root, p), nil)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("reset %s from %s: %w", d.Name, dvm.Name, err)
			}
		}
		if err := copyTree(m.Root(base.Name), root, skipPersistent); err != nil {
			return fmt.Errorf("reset %s from %s: %w", d.Name, base.Name, err)
		}
	}
	run := filepath.Join(root, "run")
	if err := os.RemoveAll(run); err != nil {
		return fmt.Errorf("reset %s: empty /run: %w", d.Name, err)
	}
	if err := os.Mkdir(run, 0o755); err != nil {
		return fmt.Errorf("reset %s: %w", d.Name, err)
	}
	if err := os.Chmod(run, 0o755); err != nil {
		return err
	}
	if d.Class == AdminVM {
		// tmpfiles-qubes.conf recreates dom0's /run/qubes at every boot:
		// qrexec sockets and runtime policy live there.
		if err := makeSkeleton(root, []struct {
			path string
			mode fs.FileMode
		}{{"run/qubes", 0o770 | fs.ModeSetgid}}); err != nil {
			return fmt.Errorf("reset %s: %w", d.Name, err)
		}
	}
	// TMPDIR of every process points at the domain's /tmp (DomainEnv): it
	// must exist, even in a StandaloneVM cloned from a root without one.
	tmp := filepath.Join(root, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("reset %s: %w", d.Name, err)
	}
	return os.Chmod(tmp, 0o777|fs.ModeSticky)
}

// skipPersistent leaves out a template's private parts (and its /run) when
// its root is copied into a template-based domain.
func skipPersistent(rel string) bool {
	if rel == "run" {
		return true
	}
	for _, p := range persistentDirs {
		if rel == p {
			return true
		}
	}
	return false
}

// RemoveDomainFS deletes everything the simulator keeps for domain name.
func (m *Machine) RemoveDomainFS(name string) error {
	if name == "" || name == Dom0 || strings.ContainsAny(name, "/") || name == "." || name == ".." {
		return fmt.Errorf("remove filesystem: refusing domain name %q", name)
	}
	if err := os.RemoveAll(m.DomainDir(name)); err != nil {
		return fmt.Errorf("remove filesystem of %s: %w", name, err)
	}
	return nil
}

// removeExcept deletes everything under root except the listed relative
// paths (and the directories leading to them).
func removeExcept(root string, keep []string) error {
	return removeExceptIn(root, "", keep)
}

func removeExceptIn(root, rel string, keep []string) error {
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	for _, e := range entries {
		r := filepath.Join(rel, e.Name())
		kept, ancestor := false, false
		for _, k := range keep {
			if k == r {
				kept = true
			} else if strings.HasPrefix(k, r+"/") {
				ancestor = true
			}
		}
		switch {
		case kept:
		case ancestor && e.IsDir():
			if err := removeExceptIn(root, r, keep); err != nil {
				return err
			}
		default:
			if err := os.RemoveAll(filepath.Join(root, r)); err != nil {
				return err
			}
		}
	}
	return nil
}

// largeFile is the size from which copyTree shares file data instead of
// copying it (see ResetVolatile).
const largeFile = 64 << 10

// copyTree copies the tree at src into dst, merging into directories that
// already exist and replacing files. skip, given a path relative to src, leaves
// that entry out. Symlinks are copied as links; sockets, fifos and devices are
// skipped (a domain's sockets live in /run, which never survives).
func copyTree(src, dst string, skip func(rel string) bool) error {
	info, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("copy %s: not a directory", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return copyDir(src, dst, "", info.Mode(), skip)
}

func copyDir(srcRoot, dstRoot, rel string, mode fs.FileMode, skip func(string) bool) error {
	dst := filepath.Join(dstRoot, rel)
	if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if fi, err := os.Lstat(dst); err != nil {
		return err
	} else if !fi.IsDir() {
		if err := os.Remove(dst); err != nil {
			return err
		}
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(filepath.Join(srcRoot, rel))
	if err != nil {
		return err
	}
	for _, e := range entries {
		r := filepath.Join(rel, e.Name())
		if skip != nil && skip(r) {
			continue
		}
		s := filepath.Join(srcRoot, r)
		d := filepath.Join(dstRoot, r)
		info, err := e.Info()
		if err != nil {
			return err
		}
		switch t := info.Mode().Type(); {
		case t == fs.ModeDir:
			if err := copyDir(srcRoot, dstRoot, r, info.Mode(), skip); err != nil {
				return err
			}
		case t == fs.ModeSymlink:
			target, err := os.Readlink(s)
			if err != nil {
				return err
			}
			if err := replaceWith(d, func(p string) error { return os.Symlink(target, p) }); err != nil {
				return err
			}
		case t == 0:
			if err := copyFile(s, d, info); err != nil {
				return err
			}
		}
	}
	// Permissions last, so a read-only source directory can still be filled.
	return os.Chmod(dst, mode.Perm()|mode&(fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky))
}

// replaceWith removes whatever is at p (unless it is a directory that create
// would fail on anyway) and calls create(p).
func replaceWith(p string, create func(string) error) error {
	if fi, err := os.Lstat(p); err == nil {
		if fi.IsDir() {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		} else if err := os.Remove(p); err != nil {
			return err
		}
	}
	return create(p)
}

func copyFile(src, dst string, info fs.FileInfo) error {
	perm := info.Mode().Perm() | info.Mode()&(fs.ModeSetgid|fs.ModeSetuid|fs.ModeSticky)
	if info.Size() >= largeFile {
		if err := replaceWith(dst, func(p string) error { return reflink(src, p, perm) }); err == nil {
			return nil
		}
		if err := replaceWith(dst, func(p string) error { return os.Link(src, p) }); err == nil {
			return nil
		}
		// Different filesystems or no hardlink support: fall through to a copy.
	}
	return replaceWith(dst, func(p string) error {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Chmod(perm); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// reflink makes dst a copy-on-write clone of src (FICLONE); it fails on
// filesystems without reflinks (ext4, tmpfs).
func reflink(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Chmod(perm); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
