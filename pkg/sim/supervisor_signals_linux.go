package sim

import (
	"syscall"
	"unsafe"
)

// kernelSigaction is struct sigaction as the rt_sigaction system call takes
// it on Linux (handler, flags, restorer, mask).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const sigIgn = 1 // SIG_IGN

// resetIgnoredSignals gives every signal the supervisor inherited as ignored
// its default action again. Ignored dispositions survive fork and exec, and
// Go's os/exec does not reset them, so without this a domain's processes
// would inherit whatever the process that started the VM happened to ignore
// (a shell's nohup, a CI runner's settings). On Qubes they start from
// systemd and qrexec-agent with default dispositions. Go leaves signals that
// were ignored at start-up alone, so changing them does not disturb its
// runtime.
func resetIgnoredSignals() {
	for sig := 1; sig <= 64; sig++ {
		if sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP) {
			continue
		}
		var old kernelSigaction
		if _, _, e := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0,
			uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 || old.handler != sigIgn {
			continue
		}
		def := kernelSigaction{} // SIG_DFL, no flags, empty mask
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&def)), 0, 8, 0, 0)
	}
}
