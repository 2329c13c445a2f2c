// Package queue is the VM-side on-disk queue of qvm-remote, in the layout of
// qvm-remote 1.x so existing VMs migrate in place:
//
//	DIR/queue/pending/ID       command body      ┐ written in DIR/queue/tmp,
//	DIR/queue/pending/ID.auth  token             ┘ renamed token first, body last
//	DIR/queue/running/ID[.auth]  handed to dom0, no result yet
//	DIR/queue/results/ID.out|.err  output, appended as it arrives
//	DIR/queue/results/ID.meta      status, reason, duration (written before .exit)
//	DIR/queue/results/ID.exit      exit status; its appearance completes the result
//	DIR/history/DAY/ID/{command,out,err,meta,exit}  archive
//	DIR/audit.log  DIR/auth.key
//
// Every file is created 0600 and every directory 0700. A body appears in
// pending/ only complete and with its token already beside it, so whoever
// watches pending/ never sees half a command.
package queue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// Dir is a queue rooted at a directory (normally ~/.qvm-remote).
type Dir string

// Paths.
func (d Dir) Pending() string  { return filepath.Join(string(d), "queue", "pending") }
func (d Dir) Running() string  { return filepath.Join(string(d), "queue", "running") }
func (d Dir) Results() string  { return filepath.Join(string(d), "queue", "results") }
func (d Dir) Tmp() string      { return filepath.Join(string(d), "queue", "tmp") }
func (d Dir) History() string  { return filepath.Join(string(d), "history") }
func (d Dir) AuditLog() string { return filepath.Join(string(d), "audit.log") }
func (d Dir) KeyFile() string  { return filepath.Join(string(d), "auth.key") }

// VMNameFile holds the VM's name as dom0 announced it on the last channel.
func (d Dir) VMNameFile() string { return filepath.Join(string(d), "vm-name") }

// LockFile is held by the serving agent.
func (d Dir) LockFile() string { return filepath.Join(string(d), "serve.lock") }

// Result file of id with extension ext ("out", "err", "meta", "exit").
func (d Dir) Result(id proto.ID, ext string) string {
	return filepath.Join(d.Results(), string(id)+"."+ext)
}

// Init creates the directories.
func (d Dir) Init() error {
	for _, p := range []string{d.Pending(), d.Running(), d.Results(), d.Tmp(), d.History()} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// Submit queues body with its token. The token is renamed into pending/
// before the body, so the body's appearance (what the agent watches for)
// finds everything in place.
func (d Dir) Submit(id proto.ID, body []byte, tok proto.Token) error {
	if err := d.Init(); err != nil {
		return err
	}
	tb, err := writeTemp(d.Tmp(), string(id)+".body", body)
	if err != nil {
		return err
	}
	ta, err := writeTemp(d.Tmp(), string(id)+".auth", []byte(tok.String()+"\n"))
	if err != nil {
		os.Remove(tb)
		return err
	}
	if err := os.Rename(ta, filepath.Join(d.Pending(), string(id)+".auth")); err != nil {
		os.Remove(tb)
		os.Remove(ta)
		return err
	}
	if err := os.Rename(tb, filepath.Join(d.Pending(), string(id))); err != nil {
		os.Remove(tb)
		os.Remove(filepath.Join(d.Pending(), string(id)+".auth"))
		return err
	}
	return nil
}

// Withdraw takes id back out of pending/; false means it was already
// claimed (or never there).
func (d Dir) Withdraw(id proto.ID) bool {
	err := os.Remove(filepath.Join(d.Pending(), string(id)))
	os.Remove(filepath.Join(d.Pending(), string(id)+".auth"))
	return err == nil
}

func writeTemp(dir, name string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Entry is a claimed command.
type Entry struct {
	ID    proto.ID
	Body  []byte
	Token proto.Token
	// TokenErr is set when the token is missing or malformed; the entry is
	// still handed to dom0, which refuses and audits it.
	TokenErr error
}

// ErrTooLarge is returned by Claim for a body over proto.MaxBody.
var ErrTooLarge = errors.New("command body too large")

// Claim moves id from pending/ to running/ (the rename decides who owns it)
// and reads it. A body over proto.MaxBody is not read.
func (d Dir) Claim(id proto.ID) (Entry, error) {
	e := Entry{ID: id}
	src, dst := filepath.Join(d.Pending(), string(id)), filepath.Join(d.Running(), string(id))
	if err := os.Rename(src+".auth", dst+".auth"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return e, err
	}
	if err := os.Rename(src, dst); err != nil {
		return e, err
	}
	return d.readRunning(id)
}

// Running lists the ids in running/: handed over before, no result seen.
func (d Dir) RunningIDs() ([]proto.ID, error) { return listIDs(d.Running()) }

// PendingIDs lists the ids waiting in pending/; names that are not ids are
// returned separately.
func (d Dir) PendingIDs() ([]proto.ID, []string, error) {
	des, err := os.ReadDir(d.Pending())
	if err != nil {
		return nil, nil, err
	}
	var ids []proto.ID
	var bad []string
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, ".auth") {
			continue
		}
		if id, err := proto.ParseID(name); err == nil {
			ids = append(ids, id)
		} else {
			bad = append(bad, name)
		}
	}
	return ids, bad, nil
}

func listIDs(dir string) ([]proto.ID, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []proto.ID
	for _, de := range des {
		if id, err := proto.ParseID(de.Name()); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// ReadRunning reads an entry already in running/.
func (d Dir) readRunning(id proto.ID) (Entry, error) {
	e := Entry{ID: id}
	p := filepath.Join(d.Running(), string(id))
	f, err := os.Open(p)
	if err != nil {
		return e, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, proto.MaxBody+1))
	if err != nil {
		return e, err
	}
	if len(body) > proto.MaxBody {
		return e, ErrTooLarge
	}
	e.Body = body
	tb, err := os.ReadFile(p + ".auth")
	if err != nil {
		e.TokenErr = fmt.Errorf("no token: %w", err)
	} else if e.Token, err = proto.ParseToken(string(tb)); err != nil {
		e.TokenErr = err
	}
	return e, nil
}

// ReadRunning reads an entry already in running/ (after a reconnect).
func (d Dir) ReadRunning(id proto.ID) (Entry, error) { return d.readRunning(id) }

// Meta is the content of results/ID.meta.
type Meta struct {
	Status     string // exited, timeout, refused
	Reason     string // one line, for refused
	Truncated  string // "stdout", "stderr", "stdout,stderr" or ""
	DurationMS uint32
}

// Finish records the result of id: meta first, then exit (each atomically),
// then running/ID is removed. Readers take the exit file as "complete".
func (d Dir) Finish(id proto.ID, code int, m Meta) error {
	var b strings.Builder
	fmt.Fprintf(&b, "status=%s\n", m.Status)
	if m.Reason != "" {
		fmt.Fprintf(&b, "reason=%s\n", oneLine(m.Reason))
	}
	if m.Truncated != "" {
		fmt.Fprintf(&b, "truncated=%s\n", m.Truncated)
	}
	fmt.Fprintf(&b, "duration_ms=%d\n", m.DurationMS)
	for _, f := range []struct {
		ext  string
		data string
	}{{"meta", b.String()}, {"exit", strconv.Itoa(code) + "\n"}} {
		tmp, err := writeTemp(d.Tmp(), string(id)+"."+f.ext, []byte(f.data))
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, d.Result(id, f.ext)); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	os.Remove(filepath.Join(d.Running(), string(id)))
	os.Remove(filepath.Join(d.Running(), string(id)+".auth"))
	return nil
}

// RejectName answers a pending entry whose name is not an id, if the name
// is safe to use in a result file name, and removes it. Such an entry never
// leaves the VM.
func (d Dir) RejectName(name, reason string) {
	os.Remove(filepath.Join(d.Pending(), name))
	os.Remove(filepath.Join(d.Pending(), name+".auth"))
	if name == "" || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") || len(name) > 200 {
		return
	}
	meta := "status=refused\nreason=" + oneLine(reason) + "\nduration_ms=0\n"
	if tmp, err := writeTemp(d.Tmp(), "reject.meta", []byte(meta)); err == nil {
		if os.Rename(tmp, filepath.Join(d.Results(), name+".meta")) != nil {
			os.Remove(tmp)
		}
	}
	if tmp, err := writeTemp(d.Tmp(), "reject.exit", []byte("255\n")); err == nil {
		if os.Rename(tmp, filepath.Join(d.Results(), name+".exit")) != nil {
			os.Remove(tmp)
		}
	}
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// ReadMeta parses results/ID.meta (missing keys stay empty).
func (d Dir) ReadMeta(id proto.ID) Meta {
	b, err := os.ReadFile(d.Result(id, "meta"))
	if err != nil {
		return Meta{}
	}
	return parseMeta(b)
}

func parseMeta(b []byte) Meta {
	var m Meta
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "status":
			m.Status = v
		case "reason":
			m.Reason = v
		case "truncated":
			m.Truncated = v
		case "duration_ms":
			n, _ := strconv.ParseUint(v, 10, 32)
			m.DurationMS = uint32(n)
		}
	}
	return m
}

// ReadExit returns the exit status of a finished id; ok is false while the
// result is not complete.
func (d Dir) ReadExit(id proto.ID) (code int, ok bool) {
	b, err := os.ReadFile(d.Result(id, "exit"))
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 || n > 255 {
		return 255, true
	}
	return n, true
}

// Archive moves id's result files into history/DAY/ID/ with the command
// text, as 1.x did, so `history` can list them.
func (d Dir) Archive(id proto.ID, body []byte, now time.Time) error {
	dest := filepath.Join(d.History(), now.Format("2006-01-02"), string(id))
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return err
	}
	for _, ext := range []string{"out", "err", "meta", "exit"} {
		if err := os.Rename(d.Result(id, ext), filepath.Join(dest, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dest, "command"), body, 0o600)
}

// AppendAudit adds one line to the VM-side audit.log (1.x kept one too);
// control bytes are flattened so a command cannot forge lines.
func (d Dir) AppendAudit(now time.Time, id proto.ID, status string, code int, body []byte) error {
	preview := body
	if len(preview) > 120 {
		preview = preview[:120]
	}
	line := fmt.Sprintf("%s %s %s exit=%d cmd=%q\n", now.UTC().Format(time.RFC3339), id, status, code, string(preview))
	f, err := os.OpenFile(d.AuditLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// HistoryEntry is one archived command.
type HistoryEntry struct {
	Day  string // YYYY-MM-DD
	ID   proto.ID
	Dir  string
	Code int  // exit status
	Done bool // an exit file was archived
	Meta Meta
}

// HistoryEntries lists history/ oldest first (by day, then id, whose
// DATE-TIME prefix sorts by time).
func (d Dir) HistoryEntries() ([]HistoryEntry, error) {
	days, err := os.ReadDir(d.History())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []HistoryEntry
	for _, day := range days {
		if _, err := time.Parse("2006-01-02", day.Name()); err != nil || !day.IsDir() {
			continue
		}
		ids, err := listIDs(filepath.Join(d.History(), day.Name()))
		if err != nil {
			continue
		}
		for _, id := range ids {
			e := HistoryEntry{Day: day.Name(), ID: id, Dir: filepath.Join(d.History(), day.Name(), string(id))}
			if b, err := os.ReadFile(filepath.Join(e.Dir, "exit")); err == nil {
				e.Code, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				e.Done = true
			}
			if b, err := os.ReadFile(filepath.Join(e.Dir, "meta")); err == nil {
				e.Meta = parseMeta(b)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// PruneHistory removes the history days older than days before now.
func (d Dir) PruneHistory(days int, now time.Time) error {
	if days <= 0 {
		return nil
	}
	cut := now.AddDate(0, 0, -days).Format("2006-01-02")
	des, err := os.ReadDir(d.History())
	if err != nil {
		return nil
	}
	for _, de := range des {
		if _, err := time.Parse("2006-01-02", de.Name()); err == nil && de.Name() < cut {
			if err := os.RemoveAll(filepath.Join(d.History(), de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
