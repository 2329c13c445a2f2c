package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Record is what the installer changed, kept in Config.StateFile: the VMs it
// created and, for everything else it touched, the value it found first.
// Later runs never overwrite a noted value, so uninstall always goes back to
// the state before the first install.
type Record struct {
	Version  int            `json:"version"`
	Created  []string       `json:"created,omitempty"`
	Prefs    []PriorPref    `json:"prefs,omitempty"`
	Tags     []AddedTag     `json:"tags,omitempty"`
	Features []PriorFeature `json:"features,omitempty"`
	Files    []PriorFile    `json:"files,omitempty"`
	Units    []string       `json:"units,omitempty"`
	// Dirs are directories the installer created, parents first.
	Dirs []string `json:"dirs,omitempty"`
}

// PriorPref is a property's value before the installer set it.
type PriorPref struct {
	VM, Prop, Value string
	Default         bool
}

// AddedTag is a tag the installer added (it was not there before).
type AddedTag struct{ VM, Tag string }

// PriorFeature is a feature's value before the installer set it.
type PriorFeature struct {
	VM, Name, Value string
	Set             bool
}

// PriorFile is a file's content before the installer wrote it.
type PriorFile struct {
	Path    string
	Existed bool
	Data    []byte
	Mode    fs.FileMode
}

func (r *Record) created(vm string) bool {
	for _, c := range r.Created {
		if c == vm {
			return true
		}
	}
	return false
}

func (r *Record) notePref(p PriorPref) {
	for _, x := range r.Prefs {
		if x.VM == p.VM && x.Prop == p.Prop {
			return
		}
	}
	r.Prefs = append(r.Prefs, p)
}

func (r *Record) noteTag(vm, tag string) {
	for _, x := range r.Tags {
		if x.VM == vm && x.Tag == tag {
			return
		}
	}
	r.Tags = append(r.Tags, AddedTag{vm, tag})
}

func (r *Record) noteFeature(p PriorFeature) {
	for _, x := range r.Features {
		if x.VM == p.VM && x.Name == p.Name {
			return
		}
	}
	r.Features = append(r.Features, p)
}

// noteFile reads path's current content as its prior state (once).
func (r *Record) noteFile(path string) error {
	for _, x := range r.Files {
		if x.Path == path {
			return nil
		}
	}
	p := PriorFile{Path: path}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if p.Data, err = os.ReadFile(path); err != nil {
			return err
		}
		p.Existed, p.Mode = true, st.Mode().Perm()
	}
	r.Files = append(r.Files, p)
	return nil
}

func (r *Record) noteUnit(u string) {
	for _, x := range r.Units {
		if x == u {
			return
		}
	}
	r.Units = append(r.Units, u)
}

// LoadRecord reads the record at path; a missing file is an empty record.
func LoadRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Record{Version: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	r := &Record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Save writes the record atomically (0600: it holds replaced file contents).
func (r *Record) Save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// WriteFileAtomic writes data to a temporary file in path's directory, syncs
// it and renames it over path, so readers see the old or the new content,
// never a half-written file.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// mkdirs creates dir and its missing parents (0755), noting each one it
// created so uninstall can remove them again.
func (r *Record) mkdirs(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		r.Dirs = append(r.Dirs, missing[i])
	}
	return nil
}
