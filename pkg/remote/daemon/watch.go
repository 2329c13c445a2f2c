package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// qrexecSocketPrefix names the socket qrexec-daemon creates in the qrexec
// directory once a VM's agent is up (qubes.md §1.6): its appearance is the
// moment a channel to the VM can first be opened.
const qrexecSocketPrefix = "qrexec."

// watchQrexecDir wakes a VM's channel loop when its qrexec socket appears.
// The directory is dom0's own, so watching it keeps the pull model: nothing
// the VM sends is involved, and no VM is polled while it is halted (beyond
// the halted_recheck safety net) as long as the watch lives.
func (d *Daemon) watchQrexecDir(ctx context.Context) error {
	dir := string(d.cfg.QrexecDir)
	if dir == "" {
		return nil
	}
	err := d.watchDir(ctx, dir, func(ev fsnotify.Event) {
		if filepath.Clean(ev.Name) == filepath.Clean(dir) && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
			// The directory itself went (dom0's /run/qubes recreated): the
			// watch is dead, so halted VMs go back to the backoff.
			d.log.WithField("dir", dir).Warn("qrexec directory removed; newly started VMs are found by backoff")
			d.startsWatched.Store(false)
			d.Wake("")
			return
		}
		if !ev.Has(fsnotify.Create) {
			return
		}
		vm, ok := strings.CutPrefix(filepath.Base(ev.Name), qrexecSocketPrefix)
		if ok && proto.ValidVMName(vm) {
			d.log.WithField("vm", vm).Debug("VM started")
			d.Wake(vm)
		}
	}, func() { d.Wake("") })
	if err == nil {
		d.startsWatched.Store(true)
	}
	return err
}

// watchKeys serves a VM as soon as a key for it appears in the key
// directory (qvm-remote-dom0 authorize), without a restart.
func (d *Daemon) watchKeys(ctx context.Context, start func(string)) error {
	dir := string(d.cfg.KeyDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	add := func(vm string) {
		if _, err := d.keys.Get(vm); err != nil {
			return
		}
		start(vm)
		d.Wake(vm)
	}
	return d.watchDir(ctx, dir, func(ev fsnotify.Event) {
		if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Write) {
			return
		}
		if vm, ok := strings.CutSuffix(filepath.Base(ev.Name), ".key"); ok && proto.ValidVMName(vm) {
			add(vm)
		}
	}, func() {
		entries, _ := d.keys.List()
		for _, e := range entries {
			add(e.VM)
		}
	})
}

// watchDir calls fn for every event in dir until ctx ends; rescan runs when
// events were lost (queue overflow).
func (d *Daemon) watchDir(ctx context.Context, dir string, fn func(fsnotify.Event), rescan func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				fn(ev)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.log.WithError(err).WithField("dir", dir).Warn("watch error; rescanning")
				rescan()
			}
		}
	}()
	return nil
}
