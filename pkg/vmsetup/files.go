package vmsetup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Owner is who files written for the user belong to.
type Owner struct {
	UID, GID int
	// Set is false when ownership is left to the process (not root, or
	// the owner is the process itself).
	Set bool
}

// OwnerOf returns the owner of path (the user's home), to be applied when
// running as root: the home's owner is the user, whatever the passwd
// database of this system is.
func OwnerOf(path string) (Owner, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Owner{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Owner{}, fmt.Errorf("%s: no owner information", path)
	}
	if os.Geteuid() != 0 || int(st.Uid) == os.Geteuid() {
		return Owner{}, nil
	}
	return Owner{UID: int(st.Uid), GID: int(st.Gid), Set: true}, nil
}

// MkdirAll creates dir and its missing parents with mode, owned by o.
func MkdirAll(dir string, mode os.FileMode, o Owner) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	if err := MkdirAll(filepath.Dir(dir), mode, o); err != nil {
		return err
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if o.Set {
		return os.Lchown(dir, o.UID, o.GID)
	}
	return nil
}

// WriteFile writes content to path atomically (temp file and rename) unless
// it already holds exactly that content and mode. It reports whether it
// changed anything.
func WriteFile(path string, content []byte, mode os.FileMode, o Owner) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == mode.Perm() {
			return false, nil
		}
	}
	if err := MkdirAll(filepath.Dir(path), 0o755, o); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return false, err
	}
	if o.Set {
		if err := tmp.Chown(o.UID, o.GID); err != nil {
			tmp.Close()
			return false, err
		}
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), path)
}

// Symlink makes path a symlink to target, replacing a different symlink; it
// refuses to replace anything else. It reports whether it changed anything.
func Symlink(target, path string, o Owner) (bool, error) {
	if cur, err := os.Readlink(path); err == nil {
		if cur == target {
			return false, nil
		}
		if err := os.Remove(path); err != nil {
			return false, err
		}
	} else if _, err := os.Lstat(path); err == nil {
		return false, fmt.Errorf("%s exists and is not a symlink", path)
	}
	if err := MkdirAll(filepath.Dir(path), 0o755, o); err != nil {
		return false, err
	}
	if err := os.Symlink(target, path); err != nil {
		return false, err
	}
	if o.Set {
		return true, os.Lchown(path, o.UID, o.GID)
	}
	return true, nil
}
