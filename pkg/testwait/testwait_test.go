package testwait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestForReturnsOnceTrue(t *testing.T) {
	var n atomic.Int32
	go func() {
		for i := 0; i < 3; i++ {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	For(t, time.Minute, "three ticks", func() bool { return n.Load() == 3 })
}

// fatalTB records Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	failed string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.failed = format
}

func TestForFailsAtTheBound(t *testing.T) {
	f := &fatalTB{TB: t}
	calls := 0
	For(f, 30*time.Millisecond, "never", func() bool {
		calls++
		// After the failure is recorded, end the loop (a real TB stops);
		// a For that never fails is ended after far more than the bound.
		return f.failed != "" || calls > 1000
	})
	if f.failed == "" || calls < 2 {
		t.Fatalf("failed=%q after %d checks, want a failure after several", f.failed, calls)
	}
}
