package simtest_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/bench"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// BenchmarkSimQvmRun measures the baseline every product benchmark divides
// by: one raw `qvm-run --pass-io VM true` through the simulator, interleaved
// with running the same `bash -c true` directly on the host. The ratio is the
// simulator's own cost; tool calls and processes spawned per qvm-run come from
// the invocation log, so they do not depend on machine speed.
func BenchmarkSimQvmRun(b *testing.B) {
	m := simtest.New(b)
	m.StandaloneVM("vm")
	env := m.Env()
	run := func(argv ...string) func() error {
		return func() error {
			c := exec.Command(argv[0], argv[1:]...)
			c.Env = env
			if out, err := c.CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %v: %s", argv, err, out)
			}
			return nil
		}
	}
	qvmRun := run(filepath.Join(m.Sim.Dom0BinDir(), "qvm-run"), "--pass-io", "vm", "true")
	if err := qvmRun(); err != nil { // starts the VM
		b.Fatal(err)
	}
	tools0, spawns0 := len(m.Invocations()), m.CountSpawns("vm")
	const n = 100
	ours, direct := bench.Compare(b, n, qvmRun, run("bash", "-c", "true"))
	bench.ReportLatency(b, "qvm-run", ours)
	bench.ReportLatency(b, "direct", direct)
	bench.ReportRatio(b, "qvm-run/direct", ours, direct)
	calls := n + 1 // Compare warms up once
	b.ReportMetric(float64(m.CountSpawns("vm")-spawns0)/float64(calls), "spawns/qvm-run")
	b.ReportMetric(float64(len(m.Invocations())-tools0-(m.CountSpawns("vm")-spawns0))/float64(calls), "tool-calls/qvm-run")
	b.Logf("qvm-run %s; direct %s", bench.Summary(ours), bench.Summary(direct))
}
