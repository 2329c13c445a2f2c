package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// Env is what items work with.
type Env struct {
	// Q runs the Qubes tools and systemctl.
	Q *qubes.Client
	// Rec collects what Apply replaced (uninstall's input).
	Rec *Record
}

// Item is one piece of desired state.
type Item interface {
	// Title names the item in progress lines: "tags on claw-agent".
	Title() string
	// Diff reads the current state and returns what Apply would change, one
	// line each ("+ tag openclaw-server", "~ memory: 400 -> 800"); no lines
	// means the item is as planned.
	Diff(ctx context.Context, env *Env) ([]string, error)
	// Apply makes the item as planned, noting in env.Rec what it replaces.
	Apply(ctx context.Context, env *Env) error
}

// StepError is a failed step: which one, and the command's failure.
type StepError struct {
	Step  int
	Total int
	Title string
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d/%d (%s): %v", e.Step, e.Total, e.Title, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Hint says what to do about err, for the failure report.
func Hint(err error) string {
	switch {
	case errors.Is(err, qubes.ErrNoSuchVM):
		return "a VM named in the answers does not exist: create it or fix the name, then run again"
	case errors.Is(err, qubes.ErrNotRunning):
		return "the VM is not running (or is paused): start it with qvm-start and run again"
	case errors.Is(err, qubes.ErrNoService), exitStatus(err) == 127:
		return "a program is missing in the VM: install the qubes-claw packages in its template and run again"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied: run the installer as root in dom0 (sudo)"
	case errors.Is(err, ErrInvalid):
		return "fix the answers file and run again"
	}
	return "fix the cause above and run again: finished steps are skipped, and uninstall undoes them"
}

func exitStatus(err error) int {
	var ce *qubes.CommandError
	if errors.As(err, &ce) {
		return ce.ExitCode
	}
	return -1
}

// --- VM ---------------------------------------------------------------

// VMItem creates a VM when it is missing; an existing VM of another class
// is an error (a class cannot change).
type VMItem struct {
	Name, Class, Template, Label string
}

func (v *VMItem) Title() string { return "VM " + v.Name }

func (v *VMItem) Diff(ctx context.Context, env *Env) ([]string, error) {
	prefs, err := env.Q.Prefs(ctx, v.Name)
	if errors.Is(err, qubes.ErrNoSuchVM) {
		what := fmt.Sprintf("+ create %s %s, label %s", v.Class, v.Name, v.Label)
		if v.Template != "" {
			what += ", template " + v.Template
		}
		return []string{what}, nil
	}
	if err != nil {
		return nil, err
	}
	if c := prefs["klass"].Value; c != "" && c != v.Class {
		return nil, fmt.Errorf("%w: %s exists as %s, the plan says %s (a class cannot change: pick another name)", ErrInvalid, v.Name, c, v.Class)
	}
	return nil, nil
}

func (v *VMItem) Apply(ctx context.Context, env *Env) error {
	if err := env.Q.Create(ctx, v.Name, qubes.CreateOptions{Class: v.Class, Template: v.Template, Label: v.Label}); err != nil {
		return err
	}
	env.Rec.Created = append(env.Rec.Created, v.Name)
	return nil
}

// --- prefs --------------------------------------------------------------

// Pref is one wanted property value.
type Pref struct{ Name, Value string }

// PrefsItem sets properties whose value differs, as qvm.prefs does: values
// are compared, not whether they were set explicitly.
type PrefsItem struct {
	VM    string
	Prefs []Pref
}

func (p *PrefsItem) Title() string { return "prefs on " + p.VM }

// vmValued are the properties whose "no VM" is listed as None and set as "".
var vmValued = []string{"netvm", "template", "default_dispvm", "guivm", "audiovm", "management_dispvm"}

func samePref(name, cur, want string) bool {
	if slices.Contains(vmValued, name) {
		norm := func(s string) string {
			if strings.EqualFold(s, "none") {
				return ""
			}
			return s
		}
		return norm(cur) == norm(want)
	}
	return strings.EqualFold(cur, want) // booleans list as True/False
}

func (p *PrefsItem) Diff(ctx context.Context, env *Env) ([]string, error) {
	cur, err := currentPrefs(ctx, env, p.VM)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range p.Prefs {
		c, ok := cur[w.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("~ %s: -> %s", w.Name, w.Value))
		case !samePref(w.Name, c.Value, w.Value):
			out = append(out, fmt.Sprintf("~ %s: %s -> %s", w.Name, c.Value, w.Value))
		}
	}
	return out, nil
}

// currentPrefs treats a VM that does not exist yet (dry run) as having no
// properties.
func currentPrefs(ctx context.Context, env *Env, vm string) (map[string]qubes.Pref, error) {
	cur, err := env.Q.Prefs(ctx, vm)
	if errors.Is(err, qubes.ErrNoSuchVM) {
		return map[string]qubes.Pref{}, nil
	}
	return cur, err
}

func (p *PrefsItem) Apply(ctx context.Context, env *Env) error {
	cur, err := env.Q.Prefs(ctx, p.VM)
	if err != nil {
		return err
	}
	for _, w := range p.Prefs {
		c := cur[w.Name]
		if samePref(w.Name, c.Value, w.Value) {
			continue
		}
		prior := c.Value
		if slices.Contains(vmValued, w.Name) && strings.EqualFold(prior, "none") {
			prior = ""
		}
		env.Rec.notePref(PriorPref{VM: p.VM, Prop: w.Name, Value: prior, Default: c.Default})
		if err := env.Q.SetPref(ctx, p.VM, w.Name, w.Value); err != nil {
			return err
		}
	}
	return nil
}

// --- tags ---------------------------------------------------------------

// TagsItem adds tags to a VM.
type TagsItem struct {
	VM   string
	Tags []string
}

func (t *TagsItem) Title() string { return "tags on " + t.VM }

func (t *TagsItem) missing(ctx context.Context, env *Env) ([]string, error) {
	have, err := env.Q.Tags(ctx, t.VM)
	if err != nil && !errors.Is(err, qubes.ErrNoSuchVM) {
		return nil, err
	}
	var out []string
	for _, tag := range t.Tags {
		if !slices.Contains(have, tag) {
			out = append(out, tag)
		}
	}
	return out, nil
}

func (t *TagsItem) Diff(ctx context.Context, env *Env) ([]string, error) {
	miss, err := t.missing(ctx, env)
	var out []string
	for _, tag := range miss {
		out = append(out, "+ tag "+tag)
	}
	return out, err
}

func (t *TagsItem) Apply(ctx context.Context, env *Env) error {
	miss, err := t.missing(ctx, env)
	if err != nil || len(miss) == 0 {
		return err
	}
	if err := env.Q.AddTags(ctx, t.VM, miss...); err != nil {
		return err
	}
	for _, tag := range miss {
		env.Rec.noteTag(t.VM, tag)
	}
	return nil
}

// --- features and services ---------------------------------------------

// Feature is one wanted feature value.
type Feature struct{ Name, Value string }

// FeaturesItem sets features (services are the features service.NAME = 1).
type FeaturesItem struct {
	VM       string
	What     string // "features" or "services"
	Features []Feature
}

func (f *FeaturesItem) Title() string { return f.What + " on " + f.VM }

func (f *FeaturesItem) current(ctx context.Context, env *Env) (map[string]string, error) {
	cur, err := env.Q.Features(ctx, f.VM)
	if errors.Is(err, qubes.ErrNoSuchVM) {
		return map[string]string{}, nil
	}
	return cur, err
}

func (f *FeaturesItem) Diff(ctx context.Context, env *Env) ([]string, error) {
	cur, err := f.current(ctx, env)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, w := range f.Features {
		c, ok := cur[w.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("+ %s = %q", w.Name, w.Value))
		case c != w.Value:
			out = append(out, fmt.Sprintf("~ %s: %q -> %q", w.Name, c, w.Value))
		}
	}
	return out, nil
}

func (f *FeaturesItem) Apply(ctx context.Context, env *Env) error {
	cur, err := f.current(ctx, env)
	if err != nil {
		return err
	}
	for _, w := range f.Features {
		c, ok := cur[w.Name]
		if ok && c == w.Value {
			continue
		}
		env.Rec.noteFeature(PriorFeature{VM: f.VM, Name: w.Name, Value: c, Set: ok})
		if svc, isSvc := strings.CutPrefix(w.Name, "service."); isSvc && w.Value == "1" {
			err = env.Q.EnableService(ctx, f.VM, svc)
		} else {
			err = env.Q.SetFeature(ctx, f.VM, w.Name, w.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// --- files ----------------------------------------------------------------

// FileItem writes a file atomically, after Check accepts the content.
type FileItem struct {
	Name string // for the title
	Path string // host path (config paths are already relocated)
	Data []byte
	Mode fs.FileMode
	// Check validates Data before anything is written (nil: none).
	Check func(path string, data []byte) error

	written bool // Apply wrote it in this run
}

func (f *FileItem) Title() string { return f.Name }

func (f *FileItem) Diff(_ context.Context, _ *Env) ([]string, error) {
	if f.Check != nil {
		if err := f.Check(f.Path, f.Data); err != nil {
			return nil, err
		}
	}
	old, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return prefixLines("+ ", f.Data, "+ new file "+f.Path), nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	if string(old) != string(f.Data) {
		out = append(out, "~ "+f.Path)
		out = append(out, lineDiff(string(old), string(f.Data))...)
	}
	if st, err := os.Stat(f.Path); err == nil && st.Mode().Perm() != f.Mode {
		out = append(out, fmt.Sprintf("~ mode %04o -> %04o", st.Mode().Perm(), f.Mode))
	}
	return out, nil
}

func prefixLines(p string, data []byte, head string) []string {
	out := []string{head}
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		out = append(out, p+l)
	}
	return out
}

// lineDiff is a minimal line diff (longest common subsequence): enough to
// show a person which lines change.
func lineDiff(a, b string) []string {
	x := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	y := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	n, m := len(x), len(y)
	l := make([][]int, n+1)
	for i := range l {
		l[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			i, j = i+1, j+1
		case j < m && (i == n || l[i][j+1] >= l[i+1][j]):
			out = append(out, "+ "+y[j])
			j++
		default:
			out = append(out, "- "+x[i])
			i++
		}
	}
	return out
}

func (f *FileItem) Apply(_ context.Context, env *Env) error {
	if f.Check != nil {
		if err := f.Check(f.Path, f.Data); err != nil {
			return err
		}
	}
	if err := env.Rec.noteFile(f.Path); err != nil {
		return err
	}
	if err := env.Rec.mkdirs(filepath.Dir(f.Path)); err != nil {
		return err
	}
	if err := WriteFileAtomic(f.Path, f.Data, f.Mode); err != nil {
		return err
	}
	f.written = true
	return nil
}

// --- units ----------------------------------------------------------------

// EnableItem enables and starts a dom0 unit (systemctl enable --now).
type EnableItem struct {
	Unit string
}

func (e *EnableItem) Title() string { return "enable " + e.Unit + " at boot" }

func (e *EnableItem) Diff(ctx context.Context, env *Env) ([]string, error) {
	on, err := env.Q.UnitEnabled(ctx, e.Unit)
	if err != nil || on {
		return nil, err
	}
	return []string{"+ systemctl enable --now " + e.Unit}, nil
}

func (e *EnableItem) Apply(ctx context.Context, env *Env) error {
	env.Rec.noteUnit(e.Unit)
	_, err := env.Q.Systemctl(ctx, "enable", "--now", e.Unit)
	return err
}
