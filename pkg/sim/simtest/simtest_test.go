package simtest_test

import (
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

func TestMain(m *testing.M) { simtest.Main(m) }

func TestSimtestMachine(t *testing.T) {
	m := simtest.New(t)
	m.Template("tpl")
	m.AppVM("app", "tpl")
	m.Tag("app", "x")
	if r := m.Host("qvm-tags", "app", "list", "x"); r.Code != 0 {
		t.Fatalf("qvm-tags: %v", r)
	}
	m.WriteFile("tpl", "/usr/bin/hello", []byte("#!/bin/sh\necho hello from $QUBES_SIM_DOMAIN\n"), 0o755)
	// The AppVM sees its template's root at start, and PATH looks there.
	if r := m.VM("app", "hello"); r.Code != 0 || r.Stdout != "hello from app\n" {
		t.Fatalf("VM: %v", r)
	}
	if r := m.Dom0("echo $QUBES_SIM_DOMAIN"); r.Stdout != "dom0\n" {
		t.Fatalf("Dom0: %v", r)
	}
	if !m.Running("app") || m.Running("tpl") {
		t.Fatalf("running: app %v tpl %v", m.Running("app"), m.Running("tpl"))
	}
	if n := m.CountTool("qvm-create"); n != 2 {
		t.Errorf("CountTool(qvm-create) = %d", n)
	}
	if n := m.CountSpawns("app"); n != 1 {
		t.Errorf("CountSpawns(app) = %d", n)
	}
	if left := simtest.Leftovers(m.Dir); len(left) == 0 {
		t.Error("Leftovers finds no supervisor of a running machine")
	}
	m.Shutdown()
	if left := simtest.Leftovers(m.Dir); len(left) != 0 {
		t.Errorf("Leftovers after Shutdown: %v", left)
	}
	if r := m.Host("qvm-run", "-p", "-n", "app", "true"); r.Code != 1 {
		t.Errorf("after Shutdown: %v", r)
	}
}
