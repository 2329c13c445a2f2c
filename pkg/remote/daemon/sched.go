package daemon

import "sync"

// scheduler runs jobs under a global and a per-VM limit, with a bounded
// wait queue per VM, picking VMs round-robin so one busy VM cannot starve
// the others.
type scheduler struct {
	mu                       sync.Mutex
	global, perVM, maxQueued int
	running                  int
	vms                      map[string]*vmQueue
	ring                     []string
	next                     int
}

type vmQueue struct {
	waiting []func()
	running int
}

func newScheduler(global, perVM, maxQueued int) *scheduler {
	return &scheduler{global: global, perVM: perVM, maxQueued: maxQueued, vms: map[string]*vmQueue{}}
}

// submit queues run for vm; false means the VM's queue is full.
func (s *scheduler) submit(vm string, run func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.vms[vm]
	if q == nil {
		q = &vmQueue{}
		s.vms[vm] = q
		s.ring = append(s.ring, vm)
	}
	if len(q.waiting) >= s.maxQueued {
		return false
	}
	q.waiting = append(q.waiting, run)
	s.dispatch()
	return true
}

// dispatch starts jobs while there is room; called with mu held.
func (s *scheduler) dispatch() {
	for s.running < s.global {
		vm, q := s.pick()
		if q == nil {
			return
		}
		run := q.waiting[0]
		q.waiting[0] = nil
		q.waiting = q.waiting[1:]
		q.running++
		s.running++
		go func() {
			defer s.done(vm)
			run()
		}()
	}
}

// pick returns the next VM in ring order that has work and room.
func (s *scheduler) pick() (string, *vmQueue) {
	for i := 0; i < len(s.ring); i++ {
		j := (s.next + i) % len(s.ring)
		q := s.vms[s.ring[j]]
		if len(q.waiting) > 0 && q.running < s.perVM {
			s.next = (j + 1) % len(s.ring)
			return s.ring[j], q
		}
	}
	return "", nil
}

func (s *scheduler) done(vm string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vms[vm].running--
	s.running--
	s.dispatch()
}
