#!/usr/bin/env bash
# make demo: the main job on a fresh simulated Qubes machine, step by step.
# Each step prints the command as a user would type it, then its output.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
DIR=$(mktemp -d /tmp/qubes-claw-demo.XXXXXX)
cleanup() { "$BIN/qubes-sim" shutdown "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

bold=""; dim=""; off=""
if [ -t 1 ]; then bold=$(tput bold 2>/dev/null || true); dim=$(tput dim 2>/dev/null || true); off=$(tput sgr0 2>/dev/null || true); fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
# run: show a dom0 command, run it, show its exit status when not 0.
run() {
  printf '%s[dom0]$ %s%s\n' "$dim" "$*" "$off"
  set +e; bash -c "$*" 2>&1 | sed 's/^/    /'; rc=${PIPESTATUS[0]}; set -e
  [ "$rc" = 0 ] || printf '    %s(exit %s)%s\n' "$dim" "$rc" "$off"
  return 0
}

step "A new simulated Qubes machine in $DIR"
iso=""
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then iso="--isolation"; fi
run "$BIN/qubes-sim init $iso $DIR"
eval "$("$BIN/qubes-sim" env "$DIR")"
[ -n "$iso" ] && echo "    isolation: dom0 and every VM have their own network namespace (loopback only)"

step "Create a template, an AppVM and a StandaloneVM with the (simulated) Qubes tools"
run "qvm-create --class TemplateVM --label black fedora-42"
run "qvm-create --template fedora-42 --label red work"
run "qvm-create --class StandaloneVM --template fedora-42 --label purple agent-vm"
run "qvm-prefs agent-vm autostart true"
run "qvm-tags agent-vm add openclaw-server"
run "qvm-tags work add openclaw-client"
run "qvm-ls 2>/dev/null"

step "qvm-run: run a command in a VM; --no-autostart never starts a halted VM"
run "qvm-run --pass-io --no-autostart work true"
run "qvm-check --running work"
run "qvm-run --pass-io work 'echo hello from \$(hostname), home \$HOME; exit 3'"
run "qvm-check --running work"

step "qrexec: a service in agent-vm, called from work under dom0's policy"
mkdir -p "$DIR/domains/agent-vm/fs/etc/qubes-rpc"
printf '#!/bin/sh\necho "demo.Echo from $QREXEC_REMOTE_DOMAIN, argument $QREXEC_SERVICE_ARGUMENT"\n' > "$DIR/domains/agent-vm/fs/etc/qubes-rpc/demo.Echo"
chmod 755 "$DIR/domains/agent-vm/fs/etc/qubes-rpc/demo.Echo"
policy="$DIR/domains/dom0/fs/etc/qubes/policy.d/50-demo.policy"
printf 'demo.Echo +1234 @tag:openclaw-client @tag:openclaw-server allow\ndemo.Echo * @anyvm @anyvm deny\n' > "$policy"
printf '%s[dom0]$ cat /etc/qubes/policy.d/50-demo.policy%s\n' "$dim" "$off"; sed 's/^/    /' "$policy"
run "$BIN/qubes-sim vm $DIR work -- qrexec-client-vm agent-vm demo.Echo+1234"
run "$BIN/qubes-sim vm $DIR work -- qrexec-client-vm agent-vm demo.Echo+22"
run "qrexec-client -d agent-vm 'DEFAULT:QUBESRPC demo.Echo+7 dom0'   # dom0 calls bypass policy"

step "Reboot: autostart VMs come back, everything else is halted"
run "$BIN/qubes-sim reboot $DIR"
run "qvm-ls --raw-data --fields name,state,class 2>/dev/null"

step "Every simulated call was recorded (benchmarks count qrexec calls from this log)"
run "wc -l < $DIR/log/invocations.jsonl"
printf '\n%sdemo finished%s\n' "$bold" "$off"
