package sim_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"unsafe"

	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// ignoreExecEnv makes the test binary ignore signal 32 and exec the rest of
// its arguments: the situation of a VM started from a process that ignores
// a signal Go does not install a handler for, so the ignore survives every
// Go program on the way to the supervisor.
const ignoreExecEnv = "SIM_IGNORE32_EXEC"

// TestSignalsHelperProcess is not a test: it is the helper's entry point.
func TestSignalsHelperProcess(t *testing.T) {
	if os.Getenv(ignoreExecEnv) == "" {
		return
	}
	act := struct {
		handler  uintptr
		flags    uint64
		restorer uintptr
		mask     uint64
	}{handler: 1} // SIG_IGN
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, 32, uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	args := flagArgs()
	path, err := exec.LookPath(args[0])
	if err != nil {
		os.Exit(127)
	}
	syscall.Exec(path, args, os.Environ())
	os.Exit(126)
}

// flagArgs returns the arguments after "--".
func flagArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

// Domain processes start with default signal dispositions whatever the
// process that started the VM ignored, as under systemd and qrexec-agent.
func TestRuntimeDefaultSignalDispositions(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("sa")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSignalsHelperProcess$", "--",
		"qvm-run", "-p", "sa", "grep SigIgn /proc/self/status")
	cmd.Env = append(m.Env(), ignoreExecEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qvm-run under an ignored signal 32: %v", err)
	}
	if string(out) != "SigIgn:\t0000000000000000\n" {
		t.Errorf("domain process inherited ignored signals: %q", out)
	}
}
