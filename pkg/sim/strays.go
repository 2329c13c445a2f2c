package sim

import (
	"bytes"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// A supervisor kills its whole tree when its domain stops, and its direct
// children die with it (Pdeathsig) if it is killed. Their own descendants
// do not: once the supervisor is gone, a double-forked daemon is re-parented
// to init (or to whatever subreaper sits above), out of reach of any
// ancestry walk. Such strays are found by the SpawnedEnv marker every
// process of the machine inherits. A process that empties its environment
// escapes; nothing else a simulated program does (setsid, double fork,
// closing its fds) does.

// killStrays SIGKILLs every process that carries m's SpawnedEnv marker and
// runs under none of m's living supervisors; with domain set, only those
// whose QUBES_SIM_DOMAIN is domain. The caller and its ancestors are
// spared. It returns how many processes it killed.
func (m *Machine) killStrays(domain string) int {
	spared := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !spared[pid]; {
		spared[pid] = true
		ppid, _, err := procStat(pid)
		if err != nil {
			break
		}
		pid = ppid
	}
	marker := []byte("\x00" + SpawnedEnv + "=" + m.Dir + "\x00")
	domMarker := []byte("\x00" + DomainEnv + "=" + domain + "\x00")
	killed := 0
	// A stray may fork between the scan and the kill: scan again until a
	// scan finds nothing (SIGKILLed processes fork no more, so this ends).
	for round := 0; round < 100; round++ {
		found := 0
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return killed
		}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || spared[pid] {
				continue
			}
			env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err != nil || len(env) == 0 {
				continue
			}
			// Prefixing NUL lets the first variable match like the others.
			env = append([]byte{0}, env...)
			if !bytes.Contains(env, marker) || (domain != "" && !bytes.Contains(env, domMarker)) {
				continue
			}
			if _, comm, err := procStat(pid); err != nil || comm == supervisorComm {
				// Zombies need no kill; supervisors are stopped by their
				// domain's shutdown, not here.
				continue
			}
			if d, depth, err := m.domainOfPid(pid, 0, ""); err == nil && depth >= 0 && m.Alive(d) {
				continue // a process of a running domain
			}
			if unix.Kill(pid, unix.SIGKILL) == nil {
				found++
			}
		}
		killed += found
		if found == 0 {
			return killed
		}
		time.Sleep(time.Millisecond)
	}
	return killed
}
