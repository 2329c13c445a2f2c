package webadmin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// pollInterval is how often a followed file is checked for growth. Polling
// (not inotify) also covers rotation and a file that does not exist yet, and
// at this rate a new line reaches the page well within a second.
const pollInterval = 200 * time.Millisecond

// maxLine bounds one log line; longer ones are cut (the daemon bounds its
// command previews, so only a corrupt file gets there).
const maxLine = 64 << 10

// FollowFile feeds every audit line of the file at path to feed until ctx
// ends: first the last backlog bytes' worth of lines, then each new line.
// A file that is replaced or truncated is read again from its start.
func FollowFile(ctx context.Context, path string, backlog int64, feed *Feed, log *logrus.Entry) {
	var (
		f       *os.File
		ino     uint64
		pending []byte
		warned  bool
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	first := true
	for {
		if f == nil {
			nf, err := os.Open(path)
			if err != nil {
				if !warned {
					log.WithError(err).Warn("audit log not readable yet; retrying")
					warned = true
				}
			} else {
				warned = false
				f = nf
				ino = inode(f)
				if first {
					// Start near the end: the page needs recent lines, not
					// the whole history of the file.
					if fi, err := f.Stat(); err == nil && fi.Size() > backlog {
						f.Seek(fi.Size()-backlog, io.SeekStart)
						pending = []byte{} // drop the partial first line
						skipPartial(f)
					}
				}
				first = false
			}
		}
		if f != nil {
			for {
				n, err := f.Read(buf)
				pending = append(pending, buf[:n]...)
				pending = emitLines(pending, feed)
				if err != nil || n == 0 {
					break
				}
			}
			// Rotation: the path now names another file, or ours shrank.
			if fi, err := os.Stat(path); err != nil || inodeOf(fi) != ino || sizeShrank(f, fi) {
				f.Close()
				f, pending = nil, nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollInterval):
		}
	}
}

func skipPartial(f *os.File) {
	b := make([]byte, 1)
	for {
		if n, err := f.Read(b); n == 0 || err != nil || b[0] == '\n' {
			return
		}
	}
}

func sizeShrank(f *os.File, fi os.FileInfo) bool {
	pos, err := f.Seek(0, io.SeekCurrent)
	return err == nil && fi.Size() < pos
}

func inode(f *os.File) uint64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return inodeOf(fi)
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// emitLines feeds the complete lines of b and returns the incomplete tail.
func emitLines(b []byte, feed *Feed) []byte {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(b) > maxLine {
				b = b[:0]
			}
			return b
		}
		line := b[:i]
		if len(line) > maxLine {
			line = line[:maxLine]
		}
		if e, ok := ParseLine(string(line), time.Now()); ok {
			feed.Add(e)
		}
		b = b[i+1:]
	}
}

// FollowJournal feeds the unit's journal (journalctl -f -o cat) until ctx
// ends, restarting journalctl after a pause if it exits.
func FollowJournal(ctx context.Context, journalctl, unit string, backlog int, feed *Feed, log *logrus.Entry) {
	for ctx.Err() == nil {
		err := followJournalOnce(ctx, journalctl, unit, backlog, feed)
		if ctx.Err() != nil {
			return
		}
		log.WithError(err).Warn("journalctl stopped; restarting it")
		backlog = 0 // lines already shown must not come twice
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

func followJournalOnce(ctx context.Context, journalctl, unit string, backlog int, feed *Feed) error {
	cmd := exec.CommandContext(ctx, journalctl, "--follow", "--no-pager", "--output=cat",
		"--unit="+unit, "--lines="+strconv.Itoa(max(backlog, 0)))
	cmd.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_COLORS=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 4096), maxLine)
	for sc.Scan() {
		if e, ok := ParseLine(sc.Text(), time.Now()); ok {
			feed.Add(e)
		}
	}
	err = cmd.Wait()
	if err == nil {
		err = errors.New("exited")
	}
	if s := bytes.TrimSpace(stderr.Bytes()); len(s) > 0 {
		err = errors.New(err.Error() + ": " + string(s))
	}
	return err
}
