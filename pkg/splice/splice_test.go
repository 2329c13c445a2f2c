package splice

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// end is one side of a byte channel: what the test writes into (w) and
// reads from (r), and the descriptor Copy sees on its side.
type end struct {
	copySide any                // given to Copy
	peer     io.ReadWriteCloser // the test's side
	close    func()
}

// newPipe returns a pipe the test closes at its end.
func newPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func pipeSource(t *testing.T) end {
	r, w := newPipe(t)
	return end{copySide: r, peer: rw{nil, w}, close: func() { r.Close(); w.Close() }}
}

func pipeSink(t *testing.T) end {
	r, w := newPipe(t)
	return end{copySide: w, peer: rw{r, nil}, close: func() { r.Close(); w.Close() }}
}

func tcpPair(t *testing.T) (ours, theirs *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func socketEnd(t *testing.T) end {
	ours, theirs := tcpPair(t)
	return end{copySide: ours, peer: theirs, close: func() { ours.Close(); theirs.Close() }}
}

// blockingPipe is a pipe in blocking mode (a descriptor not in the poller):
// Copy must fall back to an ordinary copy.
func blockingSource(t *testing.T) end {
	r, w := newPipe(t)
	r.Fd() // switches it to blocking mode
	return end{copySide: r, peer: rw{nil, w}, close: func() { r.Close(); w.Close() }}
}

type rw struct {
	r *os.File
	w *os.File
}

func (x rw) Read(p []byte) (int, error)  { return x.r.Read(p) }
func (x rw) Write(p []byte) (int, error) { return x.w.Write(p) }
func (x rw) Close() error {
	if x.w != nil {
		return x.w.Close()
	}
	return x.r.Close()
}

// closeWrite ends the test's writing side (a socket half-closes).
func closeWrite(p io.ReadWriteCloser) {
	if c, ok := p.(*net.TCPConn); ok {
		c.CloseWrite()
		return
	}
	p.Close()
}

func TestCopy(t *testing.T) {
	data := make([]byte, 9<<20+12345) // several pipe refills, odd tail
	rand.Read(data)
	tests := []struct {
		name     string
		src, dst func(*testing.T) end
		splices  bool
	}{
		{"socket to pipe", socketEnd, pipeSink, true},
		{"pipe to socket", pipeSource, socketEnd, true},
		{"pipe to pipe", pipeSource, pipeSink, true},
		{"socket to socket", socketEnd, socketEnd, false},
		{"blocking pipe to socket", blockingSource, socketEnd, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := tt.src(t), tt.dst(t)
			defer src.close()
			defer dst.close()
			w, r := dst.copySide.(io.Writer), src.copySide.(io.Reader)
			if got := spliceable(w, r); got != tt.splices {
				t.Fatalf("spliceable = %v, want %v", got, tt.splices)
			}
			go func() {
				// Small writes, so the copy waits on an empty source too.
				for off := 0; off < len(data); {
					n := min(len(data)-off, 100_000)
					if _, err := src.peer.Write(data[off : off+n]); err != nil {
						return
					}
					off += n
				}
				closeWrite(src.peer)
			}()
			var seen atomic.Int64
			type result struct {
				n   int64
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := Copy(w, r, nil, func(n int64) { seen.Add(n) })
				done <- result{n, err}
				if c, ok := w.(*net.TCPConn); ok {
					c.CloseWrite()
				} else {
					w.(io.Closer).Close()
				}
			}()
			// A slow reader at first, so the copy also waits for room.
			var got bytes.Buffer
			small := make([]byte, 4096)
			for i := 0; i < 50; i++ {
				n, err := dst.peer.Read(small)
				got.Write(small[:n])
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			if _, err := io.Copy(&got, dst.peer); err != nil {
				t.Fatal(err)
			}
			res := <-done
			if res.err != nil || res.n != int64(len(data)) || seen.Load() != res.n {
				t.Fatalf("Copy = %d, %v; progress %d; want %d, nil", res.n, res.err, seen.Load(), len(data))
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("received %d bytes, not the %d sent", got.Len(), len(data))
			}
		})
	}
}

// Closing either side from another goroutine ends a waiting Copy, and the
// close itself does not wait for the other side's traffic.
func TestCopyClose(t *testing.T) {
	tests := []struct {
		name     string
		closeSrc bool
	}{
		{"source closed while waiting for data", true},
		{"destination closed, then data arrives", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := socketEnd(t)
			defer src.close()
			_, pw := newPipe(t) // the read end stays open: the pipe has a reader
			done := make(chan error, 1)
			go func() {
				_, err := Copy(pw, src.copySide.(io.Reader), nil, nil)
				done <- err
			}()
			time.Sleep(20 * time.Millisecond) // let it wait in the poller
			if tt.closeSrc {
				src.copySide.(io.Closer).Close()
			} else {
				pw.Close() // must not block on the waiting copy
				src.peer.Write([]byte("late"))
			}
			err := <-done
			if err == nil {
				t.Fatal("Copy after close = nil (EOF), want an error")
			}
		})
	}
}

// A reader that went away makes the copy fail with EPIPE rather than kill
// the process with SIGPIPE.
func TestCopyBrokenPipe(t *testing.T) {
	src := socketEnd(t)
	defer src.close()
	pr, pw := newPipe(t)
	pr.Close()
	go src.peer.Write(make([]byte, 1<<16))
	_, err := Copy(pw, src.copySide.(io.Reader), nil, nil)
	if !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Copy to a pipe without reader = %v, want EPIPE", err)
	}
}

// A socket source that reaches EOF while the destination pipe is full must
// still end the copy once the pipe drains: the kernel answers EAGAIN for the
// full pipe before looking at the socket, and the socket's EOF has already
// been signalled, so waiting for the socket would wait forever.
func TestCopyEOFWhilePipeFull(t *testing.T) {
	tests := []struct {
		name string
		data int
	}{
		{"one byte fills a one-page pipe", 1},
		{"several pages through a one-page pipe", 5 * 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := socketEnd(t)
			defer src.close()
			pr, pw := newPipe(t)
			sc, _ := pw.SyscallConn()
			var err error
			sc.Control(func(fd uintptr) { _, err = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, 4096) })
			if err != nil {
				t.Fatal(err)
			}
			src.peer.Write(make([]byte, tt.data))
			closeWrite(src.peer)
			done := make(chan error, 1)
			go func() {
				_, err := Copy(pw, src.copySide.(io.Reader), nil, nil)
				pw.Close()
				done <- err
			}()
			time.Sleep(50 * time.Millisecond) // the copy fills the pipe and waits
			got := make([]byte, tt.data)
			if _, err := io.ReadFull(pr, got); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Copy = %v", err)
				}
			case <-time.After(10 * time.Second): // a hang, not a timing check
				t.Fatal("Copy did not return after the source's EOF")
			}
		})
	}
}
