// Package bench measures latencies the way the project reports them: many
// samples, medians and tail quantiles rather than means, and ours against a
// baseline interleaved in the same run, so machine noise hits both alike and
// the ratio stays meaningful on shared machines.
package bench

import (
	"fmt"
	"math"
	"sort"
	"testing"
	"time"
)

// Samples is a set of measured durations.
type Samples []time.Duration

// Quantile returns the q-quantile (0 ≤ q ≤ 1) by nearest rank.
func (s Samples) Quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(Samples(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	i := int(math.Ceil(q*float64(len(c)))) - 1
	if i < 0 {
		i = 0
	}
	return c[i]
}

// Median returns the 0.5-quantile.
func (s Samples) Median() time.Duration { return s.Quantile(0.5) }

// Time runs fn and returns how long it took; fn's error fails the benchmark.
func Time(tb testing.TB, fn func() error) time.Duration {
	tb.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// Compare runs ours and base alternately n times each (after one unmeasured
// warm-up of each) and returns both sample sets. Which goes first swaps
// every round: a run straight after another finds the CPUs awake and the
// other's after-work (a pool refilling, a process exiting) still going.
func Compare(tb testing.TB, n int, ours, base func() error) (o, b Samples) {
	tb.Helper()
	return CompareSpaced(tb, n, 0, ours, base)
}

// CompareSpaced is Compare with a pause of gap before every run, for what
// leaves work behind that must not land on the next measurement.
func CompareSpaced(tb testing.TB, n int, gap time.Duration, ours, base func() error) (o, b Samples) {
	tb.Helper()
	Time(tb, ours)
	Time(tb, base)
	timed := func(fn func() error) func() time.Duration {
		return func() time.Duration {
			time.Sleep(gap)
			return Time(tb, fn)
		}
	}
	return alternate(n, timed(ours), timed(base))
}

// alternate takes n samples of each, swapping which goes first every round.
func alternate(n int, ours, base func() time.Duration) (o, b Samples) {
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			o = append(o, ours())
			b = append(b, base())
		} else {
			b = append(b, base())
			o = append(o, ours())
		}
	}
	return o, b
}

// ReportLatency reports median and p99 of s in milliseconds under name.
func ReportLatency(b *testing.B, name string, s Samples) {
	b.ReportMetric(ms(s.Median()), name+"-median-ms")
	b.ReportMetric(ms(s.Quantile(0.99)), name+"-p99-ms")
}

// ReportRatio reports median(ours)/median(base) under name.
func ReportRatio(b *testing.B, name string, ours, base Samples) {
	b.ReportMetric(Ratio(ours, base), name+"-ratio")
}

// Ratio is median(ours)/median(base).
func Ratio(ours, base Samples) float64 {
	if base.Median() == 0 {
		return math.Inf(1)
	}
	return float64(ours.Median()) / float64(base.Median())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summary formats s for logs: "median 1.20ms p99 3.40ms (n=200)".
func Summary(s Samples) string {
	return fmt.Sprintf("median %.2fms p99 %.2fms (n=%d)", ms(s.Median()), ms(s.Quantile(0.99)), len(s))
}
