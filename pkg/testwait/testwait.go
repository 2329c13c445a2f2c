// Package testwait is the tests' bounded wait for a condition that other
// goroutines or processes make true. The bound only ends a broken run; it is
// never a timing assertion, so it is set far above any expected latency.
package testwait

import (
	"testing"
	"time"
)

// interval spaces the checks: cond may be costly (a process, a request).
const interval = 10 * time.Millisecond

// For polls cond until it holds, failing tb after within.
func For(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up after %s waiting for %s", within, what)
		}
		time.Sleep(interval)
	}
}
