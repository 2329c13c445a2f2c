// Package splice relays bytes between a pipe and a socket (or two pipes)
// with splice(2): the kernel moves the pages, no user-space buffer sees
// them. A tunnel hop (socket → qrexec pipe, pipe → socket) then costs one
// system call per chunk instead of a read and a write that copy it twice.
//
// Descriptors must be non-blocking and in Go's poller (net.Conn, os.Pipe,
// or files made so); anything else is copied the ordinary way.
package splice

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxChunk is asked of each splice call; the kernel moves at most a pipe's
// capacity.
const maxChunk = 1 << 20

// Copy copies src to dst until src's EOF or an error, as io.CopyBuffer,
// calling progress (if not nil) with each chunk's size as it is moved. It
// splices when one side is a pipe and the other a pipe or a stream socket,
// both non-blocking; otherwise it copies through buf (nil: a fresh buffer).
// A nil error means src reached EOF.
func Copy(dst io.Writer, src io.Reader, buf []byte, progress func(n int64)) (int64, error) {
	if s, d, ok := rawPair(src, dst); ok {
		return spliceAll(d, s, progress)
	}
	if progress == nil {
		progress = func(int64) {}
	}
	return io.CopyBuffer(countingWriter{dst, progress}, onlyReader{src}, buf)
}

// spliceable tells whether Copy(dst, src, ...) would splice.
func spliceable(dst io.Writer, src io.Reader) bool {
	_, _, ok := rawPair(src, dst)
	return ok
}

type kind int

const (
	other kind = iota
	fifo
	stream // a SOCK_STREAM socket
)

// describe tells what rc is, and whether it is non-blocking.
func describe(rc syscall.RawConn) (k kind) {
	_ = rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK == 0 {
			return
		}
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil {
			return
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO:
			k = fifo
		case unix.S_IFSOCK:
			if t, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); err == nil && t == unix.SOCK_STREAM {
				k = stream
			}
		}
	})
	return k
}

// rawPair returns both sides' raw connections when splice(2) can join them.
func rawPair(src io.Reader, dst io.Writer) (s, d syscall.RawConn, ok bool) {
	sc, ok1 := src.(syscall.Conn)
	dc, ok2 := dst.(syscall.Conn)
	if !ok1 || !ok2 {
		return nil, nil, false
	}
	s, err1 := sc.SyscallConn()
	d, err2 := dc.SyscallConn()
	if err1 != nil || err2 != nil {
		return nil, nil, false
	}
	sk, dk := describe(s), describe(d)
	if sk == other || dk == other || (sk != fifo && dk != fifo) {
		return nil, nil, false
	}
	return s, d, true
}

// spliceAll moves chunks from s to d. A splice that fails with EAGAIN is
// ambiguous: the source may be empty or the destination full (a socket
// source is not even looked at while the pipe is full). The level state of
// both sides, polled without waiting, tells which descriptor to wait for in
// the poller; its edge-triggered readiness alone cannot: a source that
// reached EOF while the pipe was full never signals again. Waits never hold
// the other side, so closing either from another goroutine stays prompt.
func spliceAll(d, s syscall.RawConn, progress func(int64)) (int64, error) {
	var total int64
	for {
		var n int64
		var serr error
		waitDst := false
		try := func(sfd, dfd uintptr) {
			n, serr, waitDst = move(sfd, dfd)
		}
		// Wait for the source, then move what the destination takes.
		err := s.Read(func(sfd uintptr) bool {
			if cerr := d.Control(func(dfd uintptr) { try(sfd, dfd) }); cerr != nil {
				serr = cerr
				return true
			}
			return serr != unix.EAGAIN || waitDst
		})
		if err == nil && serr == unix.EAGAIN {
			// The destination is full: wait for room.
			err = d.Write(func(dfd uintptr) bool {
				if cerr := s.Control(func(sfd uintptr) { try(sfd, dfd) }); cerr != nil {
					serr = cerr
					return true
				}
				return serr != unix.EAGAIN || !waitDst
			})
		}
		if err == nil {
			err = serr
		}
		if n > 0 {
			total += n
			if progress != nil {
				progress(n)
			}
		}
		switch {
		case err == unix.EAGAIN:
			continue // the source ran dry while we waited for room
		case err != nil:
			return total, wrap(err)
		case n == 0:
			return total, nil // EOF
		}
	}
}

// move splices one chunk. On EAGAIN it tells whether the destination is
// the side to wait for; when both sides look ready (their state changed
// since the call) it tries again, pausing after a few tries so that a
// destination that polls writable yet takes nothing cannot make it spin.
func move(sfd, dfd uintptr) (n int64, err error, waitDst bool) {
	for tries := 0; ; tries++ {
		n, err = unix.Splice(int(sfd), nil, int(dfd), nil, maxChunk, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
		switch {
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return n, err, false
		case !ready(dfd, unix.POLLOUT):
			return 0, err, true
		case !ready(sfd, unix.POLLIN):
			return 0, err, false
		case tries >= 3:
			time.Sleep(time.Millisecond)
		}
	}
}

// ready polls fd without waiting: true if it has the events asked for, or
// an error or hang-up (which the next splice reports).
func ready(fd uintptr, events int16) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		_, err := unix.Poll(p, 0)
		if err != unix.EINTR {
			return err != nil || p[0].Revents&(events|unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0
		}
	}
}

func wrap(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return os.NewSyscallError("splice", err)
	}
	return err
}

// countingWriter reports each write's size.
type countingWriter struct {
	w        io.Writer
	progress func(int64)
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if n > 0 {
		w.progress(int64(n))
	}
	return n, err
}

// onlyReader hides WriterTo, so io.CopyBuffer uses the given buffer.
type onlyReader struct{ io.Reader }
