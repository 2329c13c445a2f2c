// Package ledger is dom0's memory of every command id it accepted: the replay
// cache and the at-most-once journal in one append-only file. A command is
// recorded (and the record synced to disk) before it runs; its completion is
// recorded after. After a restart, an id recorded as begun but never finished
// is "interrupted": it is answered as such and never run again. Records are
// kept while a replay could still pass the timestamp check, then compacted
// away.
package ledger

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// State is what the ledger knows of an id.
type State int

// States.
const (
	Unknown     State = iota
	Running           // begun by this process, not finished
	Done              // finished
	Interrupted       // begun by a previous process that died before finishing
)

// ErrSeen is returned by Begin for an id the ledger already holds.
var ErrSeen = errors.New("command id already used")

type entry struct {
	state State
	// expires is when the record may be dropped: by then the token's
	// timestamp is outside the window and a replay fails that check.
	expires int64
}

type key struct {
	vm string
	id proto.ID
}

// Ledger is the open journal. Its methods are safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	m       map[key]*entry
	records int
	keep    time.Duration
	now     func() time.Time
}

// Open loads the journal at path (creating it 0600 with its directory 0700).
// keep is how long records are kept past the later of their acceptance and
// their token's time: twice the timestamp window is enough.
func Open(path string, keep time.Duration) (*Ledger, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	l := &Ledger{path: path, m: map[key]*entry{}, keep: keep, now: time.Now}
	if err := l.load(); err != nil {
		return nil, err
	}
	if err := l.compact(); err != nil {
		return nil, err
	}
	return l, nil
}

// load replays the journal. A last line without its newline was cut by a
// crash while being written; since a command runs only after its record is
// synced, such a command never ran and the line is dropped.
func (l *Ledger) load() error {
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if i := bytes.LastIndexByte(b, '\n'); i < len(b)-1 {
		b = b[:i+1]
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		f := bytes.Fields(sc.Bytes())
		if len(f) != 4 {
			return fmt.Errorf("%s:%d: corrupt record", l.path, n)
		}
		id, err := proto.ParseID(string(f[2]))
		if err != nil || !proto.ValidVMName(string(f[1])) {
			return fmt.Errorf("%s:%d: corrupt record", l.path, n)
		}
		exp, err := strconv.ParseInt(string(f[3]), 10, 64)
		if err != nil {
			return fmt.Errorf("%s:%d: corrupt record", l.path, n)
		}
		k := key{string(f[1]), id}
		switch string(f[0]) {
		case "B":
			l.m[k] = &entry{state: Interrupted, expires: exp}
		case "D", "I":
			st := Done
			if f[0][0] == 'I' {
				st = Interrupted
			}
			if e, ok := l.m[k]; ok {
				e.state = st
			} else {
				l.m[k] = &entry{state: st, expires: exp}
			}
		default:
			return fmt.Errorf("%s:%d: corrupt record", l.path, n)
		}
	}
	return sc.Err()
}

// compact rewrites the journal with the live records only.
func (l *Ledger) compact() error {
	now := l.now().Unix()
	var buf bytes.Buffer
	l.records = 0
	for k, e := range l.m {
		if e.expires < now {
			delete(l.m, k)
			continue
		}
		op := "D"
		switch e.state {
		case Interrupted:
			op = "I"
		case Running:
			op = "B"
		}
		fmt.Fprintf(&buf, "%s %s %s %d\n", op, k.vm, k.id, e.expires)
		l.records++
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if l.f != nil {
		l.f.Close()
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	l.f = f
	return nil
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Lookup returns what the ledger knows of vm's id.
func (l *Ledger) Lookup(vm string, id proto.ID) State {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.m[key{vm, id}]; ok {
		return e.state
	}
	return Unknown
}

// Begin records that vm's id is about to run, durably, and returns ErrSeen
// if the id was recorded before. tokenTime is the client's timestamp.
func (l *Ledger) Begin(vm string, id proto.ID, tokenTime int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := key{vm, id}
	if _, ok := l.m[k]; ok {
		return ErrSeen
	}
	exp := max(l.now().Unix(), tokenTime) + int64(l.keep/time.Second)
	if err := l.append("B", k, exp); err != nil {
		return err
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	l.m[k] = &entry{state: Running, expires: exp}
	return nil
}

// Finish records that vm's id ended. It is not synced: losing it in a crash
// only turns a finished command into an "interrupted" one, never runs it twice.
func (l *Ledger) Finish(vm string, id proto.ID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := key{vm, id}
	e, ok := l.m[k]
	if !ok {
		return fmt.Errorf("ledger: finish of unknown id %s", id)
	}
	e.state = Done
	if err := l.append("D", k, e.expires); err != nil {
		return err
	}
	// Compact once the file holds mostly dead records.
	if l.records > 1024 && l.records > 4*len(l.m) {
		return l.compact()
	}
	return nil
}

func (l *Ledger) append(op string, k key, exp int64) error {
	if _, err := fmt.Fprintf(l.f, "%s %s %s %d\n", op, k.vm, k.id, exp); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	l.records++
	return nil
}

// Close closes the journal.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
