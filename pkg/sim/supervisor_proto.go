package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// The supervisor protocol runs over SOCK_SEQPACKET unix sockets: every message
// is one JSON document in one packet, so file descriptors passed with
// SCM_RIGHTS stay attached to the message they belong to.
//
// A client sends one request (with 0 or 3 fds: stdin, stdout, stderr of the
// remote process) and then reads replies: "started" (pid), "stream" (one fd:
// a socket the client copies to and from itself, for socket and /dev/tcp
// services), "exit" (status), "error" (status and message), "ok", "list". After
// "started" the client may send "signal" messages on the same connection.

// Request operations.
const (
	opPing     = "ping"
	opSpawn    = "spawn"    // run argv in the domain (dom0 or the domain itself may ask)
	opService  = "service"  // run a qrexec service of the domain (dom0 only)
	opTrigger  = "trigger"  // qrexec-client-vm: policy-checked call from the peer's domain
	opList     = "list"     // processes started through the supervisor
	opSignal   = "signal"   // signal a running process (by pid or tag)
	opShutdown = "shutdown" // stop the domain
	opPause    = "pause"
	opUnpause  = "unpause"
)

// Reply types.
const (
	repStarted = "started"
	repStream  = "stream"
	repExit    = "exit"
	repError   = "error"
	repOK      = "ok"
	repList    = "list"
)

// Exit statuses of qrexec (libqrexec/qrexec.h).
const (
	ExitProblem         = 125
	ExitRequestRefused  = 126
	ExitServiceNotFound = 127
)

type request struct {
	Op string `json:"op"`
	// NFDs is the number of fds attached (0 or 3).
	NFDs int `json:"nfds,omitempty"`

	// spawn
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	User string   `json:"user,omitempty"`
	Tag  string   `json:"tag,omitempty"`
	// Shell makes the supervisor run Argv[0] with bash -c (qubes.VMShell).
	Shell bool `json:"shell,omitempty"`

	// service, trigger
	Service string `json:"service,omitempty"`
	Arg     string `json:"arg,omitempty"`
	Source  string `json:"source,omitempty"`
	Target  string `json:"target,omitempty"`

	// signal
	Pid int `json:"pid,omitempty"`
	Sig int `json:"sig,omitempty"`
}

type reply struct {
	Type  string        `json:"type"`
	Pid   int           `json:"pid,omitempty"`
	Code  int           `json:"code,omitempty"`
	Msg   string        `json:"msg,omitempty"`
	Procs []ProcessInfo `json:"procs,omitempty"`
}

// ProcessInfo describes a process started through a domain's supervisor.
type ProcessInfo struct {
	Pid  int      `json:"pid"`
	Tag  string   `json:"tag,omitempty"`
	Argv []string `json:"argv"`
}

// maxPacket bounds one protocol message (argv and env of a spawn).
const maxPacket = 1 << 20

// conn is one protocol connection.
type conn struct{ c *net.UnixConn }

func (c conn) send(v any, files ...*os.File) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	_, _, err = c.c.WriteMsgUnix(b, oob, nil)
	return err
}

// recv reads one message into v and returns the fds that came with it.
func (c conn) recv(v any) ([]*os.File, error) {
	buf := make([]byte, maxPacket)
	oob := make([]byte, unix.CmsgSpace(4*8))
	n, oobn, flags, _, err := c.c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	files, ferr := parseRights(oob[:oobn])
	if n == 0 && len(files) == 0 {
		return nil, errEOF
	}
	if flags&unix.MSG_TRUNC != 0 || flags&unix.MSG_CTRUNC != 0 {
		closeAll(files)
		return nil, errors.New("supervisor protocol: message truncated")
	}
	if ferr != nil {
		return nil, ferr
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		closeAll(files)
		return nil, fmt.Errorf("supervisor protocol: %w", err)
	}
	return files, nil
}

// errEOF is a closed connection (a zero-length packet is never sent).
var errEOF = errors.New("connection closed")

func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("supervisor protocol: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), "fd"+strconv.Itoa(fd)))
		}
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// sockAddr returns an address for the unix socket at path that fits in
// sun_path (108 bytes): long paths (deep t.TempDir()s) go through an O_PATH
// descriptor of the directory. release must be called after bind/connect.
func sockAddr(path string) (addr string, release func(), err error) {
	if len(path) < 100 {
		return path, func() {}, nil
	}
	fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, filepath.Base(path)), func() { unix.Close(fd) }, nil
}

func dialUnix(network, path string) (*net.UnixConn, error) {
	addr, release, err := sockAddr(path)
	if err != nil {
		return nil, err
	}
	defer release()
	return net.DialUnix(network, nil, &net.UnixAddr{Name: addr, Net: network})
}

func listenUnix(network, path string) (*net.UnixListener, error) {
	addr, release, err := sockAddr(path)
	if err != nil {
		return nil, err
	}
	defer release()
	l, err := net.ListenUnix(network, &net.UnixAddr{Name: addr, Net: network})
	if err != nil {
		return nil, err
	}
	// We unlink the real path ourselves at shutdown.
	l.SetUnlinkOnClose(false)
	return l, nil
}
