package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

type undo struct {
	title string
	do    func(context.Context) error
}

// Uninstall undoes what the record says the installer did, newest first:
// units, files, features, tags, properties; the VMs it created are removed
// only with removeVMs (otherwise they stay, without our tags, features and
// services). The record itself goes last. Each step prints a progress line;
// with dryRun nothing changes.
func Uninstall(ctx context.Context, q *qubes.Client, recordPath string, removeVMs, dryRun bool, w io.Writer) error {
	rec, err := LoadRecord(recordPath)
	if err != nil {
		return err
	}
	gone := func(vm string) bool { return removeVMs && rec.created(vm) }
	var steps []undo
	for _, u := range slices.Backward(rec.Units) {
		steps = append(steps, undo{"disable " + u, func(ctx context.Context) error {
			_, err := q.Systemctl(ctx, "disable", "--now", u)
			return err
		}})
	}
	for _, f := range slices.Backward(rec.Files) {
		title := "remove " + f.Path
		if f.Existed {
			title = "restore " + f.Path
		}
		steps = append(steps, undo{title, func(context.Context) error {
			if f.Existed {
				return WriteFileAtomic(f.Path, f.Data, f.Mode)
			}
			if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}})
	}
	for _, f := range slices.Backward(rec.Features) {
		if gone(f.VM) {
			continue
		}
		steps = append(steps, undo{fmt.Sprintf("feature %s on %s", f.Name, f.VM), func(ctx context.Context) error {
			if f.Set {
				return skipGone(q.SetFeature(ctx, f.VM, f.Name, f.Value))
			}
			return skipGone(q.UnsetFeature(ctx, f.VM, f.Name))
		}})
	}
	for _, t := range slices.Backward(rec.Tags) {
		if gone(t.VM) {
			continue
		}
		steps = append(steps, undo{fmt.Sprintf("tag %s on %s", t.Tag, t.VM), func(ctx context.Context) error {
			return skipGone(q.DelTag(ctx, t.VM, t.Tag))
		}})
	}
	for _, p := range slices.Backward(rec.Prefs) {
		if rec.created(p.VM) {
			continue // its own VM: kept as configured, or removed
		}
		steps = append(steps, undo{fmt.Sprintf("%s of %s", p.Prop, p.VM), func(ctx context.Context) error {
			if p.Default {
				return skipGone(q.ResetPref(ctx, p.VM, p.Prop))
			}
			return skipGone(q.SetPref(ctx, p.VM, p.Prop, p.Value))
		}})
	}
	for _, vm := range slices.Backward(rec.Created) {
		if !removeVMs {
			fmt.Fprintf(w, "keeping VM %s (uninstall --remove-vms removes it)\n", vm)
			continue
		}
		steps = append(steps, undo{"remove VM " + vm, func(ctx context.Context) error {
			if running, err := q.IsRunning(ctx, vm); err == nil && running {
				if err := q.Shutdown(ctx, vm, true); err != nil {
					return err
				}
			}
			return skipGone(q.Remove(ctx, vm))
		}})
	}
	for _, d := range slices.Backward(rec.Dirs) {
		steps = append(steps, undo{"remove directory " + d, func(context.Context) error {
			// Only if empty: something else may have put files there since.
			if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) {
				return err
			}
			return nil
		}})
	}
	steps = append(steps, undo{"remove the install record " + recordPath, func(context.Context) error {
		if err := os.Remove(recordPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Remove(filepath.Dir(recordPath)); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) {
			return err
		}
		return nil
	}})
	for i, s := range steps {
		fmt.Fprintf(w, "[%d/%d] %s ... ", i+1, len(steps), s.title)
		if dryRun {
			fmt.Fprintln(w, "would change")
			continue
		}
		if err := s.do(ctx); err != nil {
			fmt.Fprintln(w, "failed")
			return &StepError{Step: i + 1, Total: len(steps), Title: s.title, Err: err}
		}
		fmt.Fprintln(w, "changed")
	}
	return nil
}

func skipGone(err error) error {
	if errors.Is(err, qubes.ErrNoSuchVM) || errors.Is(err, qubes.ErrUnset) {
		return nil
	}
	return err
}

func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
