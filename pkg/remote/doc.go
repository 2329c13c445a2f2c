// Package remote is the map of qvm-remote, "SSH for dom0": a VM asks dom0 to
// run a shell command and gets its output and exit status back, while dom0
// keeps the pull model (it opens every channel; no VM can call into dom0).
//
// The life of one command:
//
//	VM: qvm-remote CMD ──► client: body + token, written elsewhere, renamed
//	                       into ~/.qvm-remote/queue/pending/ (queue)
//	VM: qvm-remote serve ◄─ started by dom0 over qvm-run --pass-io; sees the
//	                       entry by fsnotify, moves it to running/, sends a
//	                       Submit frame (agent, proto)
//	dom0: qvm-remote-dom0 ─ validates the frame, checks the token against the
//	                       VM's key (keys, proto), records the id (ledger),
//	                       schedules it (daemon), runs it (executor), streams
//	                       Output frames and one Result frame back (proto),
//	                       audits every step (audit)
//	VM: agent ──────────► appends output to results/ID.out|err as it arrives
//	                       and finishes with results/ID.exit (queue), then
//	                       sends an Ack; the client tails those files by
//	                       fsnotify and exits with the command's status (client)
//	dom0 ────────────────  keeps the output and result until that Ack: a
//	                       channel that breaks loses nothing, since the agent
//	                       hands the entry in again on the next one and gets
//	                       the output again from its start (skipping what it
//	                       has) and the result (daemon, agent)
//
// Subpackages, one concept each:
//
//	proto   frames, command ids, tokens, body validation: everything parsed
//	        from the hostile side
//	executor the sandboxed command runner in dom0
//	keys    per-VM keys in dom0 (and the 1.x files)
//	ledger  replay cache and at-most-once journal, on disk
//	audit   dom0 audit log categories
//	queue   the VM-side on-disk queue
//	agent   the VM side of a channel (qvm-remote serve)
//	client  the VM-side command submitter
//	daemon  the dom0 engine: channels, scheduling, execution
package remote
