package qubes

// SetCallVMHelper lets the external test package install the function the
// test binary runs when it is re-executed inside a simulated VM.
func SetCallVMHelper(f func() int) { callVMHelper = f }
