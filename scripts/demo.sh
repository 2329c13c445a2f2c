#!/usr/bin/env bash
# make demo: qubes-claw installed on a fresh simulated Qubes machine, step by
# step. Each step prints the command as a user would type it, then its output.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/bin
DIR=$(mktemp -d /tmp/qubes-claw-demo.XXXXXX)
standin=""
cleanup() {
  [ -z "$standin" ] || kill "$standin" 2>/dev/null || true
  "$BIN/qubes-sim" shutdown "$DIR" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

bold=""; dim=""; off=""
if [ -t 1 ]; then bold=$(tput bold 2>/dev/null || true); dim=$(tput dim 2>/dev/null || true); off=$(tput sgr0 2>/dev/null || true); fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
# show: print a command as typed in a domain; run: show it, run it on the host
# in dom0's environment (the qvm-* tools), show its exit status when not 0.
show() { printf '%s[%s]$ %s%s\n' "$dim" "$1" "$2" "$off"; }
out() { set +e; "$@" 2>&1 | sed 's/^/    /'; rc=${PIPESTATUS[0]}; set -e
  [ "$rc" = 0 ] || printf '    %s(exit %s)%s\n' "$dim" "$rc" "$off"; }
run() { show dom0 "$*"; out bash -c "$*"; }
# at: run CMD inside a domain (its own network namespace in isolation mode).
at() { local d=$1; shift; show "$d" "$*"
  if [ "$d" = dom0 ]; then out "$BIN/qubes-sim" dom0 "$DIR" -- bash -c "$*"
  else out "$BIN/qubes-sim" vm "$DIR" "$d" -- bash -c "$*"; fi; }
fs() { printf '%s/domains/%s/fs%s' "$DIR" "$1" "$2"; }

step "A new simulated Qubes machine in $DIR"
iso=""
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then iso="--isolation"; fi
run "$BIN/qubes-sim init $iso $DIR"
eval "$("$BIN/qubes-sim" env "$DIR")"
PATH=$PATH:$BIN
if [ -n "$iso" ]; then
  echo "    isolation: dom0 and every VM have their own network namespace (loopback only)"
  tport=32125; gport=18789
else
  # Without isolation every domain shares the host's loopback: dom0's tunnel
  # ends take other ports than the VM's proxy and gateway, or curl in dom0
  # would reach the VM's port directly instead of through the tunnel.
  echo "    no isolation (not root): domains share the host's loopback and hostname; dom0's tunnels listen on 42125 and 48789"
  tport=42125; gport=48789
fi

step "A template and a client AppVM; the qubes-claw packages in the template and in dom0"
run "qvm-create --class TemplateVM --label black fedora-42"
run "qvm-create --template fedora-42 --label red work"
# What the packages install (pkg/pkgspec): rpm is not simulated, the files are.
pkg() { "$BIN/qubes-sim" install "$DIR" "$@" >/dev/null; }
pkg fedora-42 "$BIN/qvm-remote:/usr/bin/qvm-remote" "$BIN/qubes-claw-connect:/usr/bin/qubes-claw-connect" \
  "$BIN/qubes-claw-proxy:/usr/bin/qubes-claw-proxy" "$BIN/qubes-claw-standin:/usr/bin/qubes-claw-standin"
ln -s /usr/bin/qubes-claw-connect "$(fs fedora-42 /etc/qubes-rpc/qubes-claw.Connect)"
# OpenClaw itself is not packaged here: a stand-in serves its gateway port.
printf '#!/bin/sh\n[ "$1" = gateway ] && [ "$2" = --port ] || exit 64\nexec qubes-claw-standin --listen "127.0.0.1:$3"\n' > "$(fs fedora-42 /usr/bin/openclaw)"
chmod 755 "$(fs fedora-42 /usr/bin/openclaw)"
pkg dom0 "$BIN/qubes-claw-install:/usr/bin/qubes-claw-install" "$BIN/qubes-claw-tunnel:/usr/bin/qubes-claw-tunnel" \
  "$PWD/rpm/qubes-claw-tunnel.service:/usr/lib/systemd/system/qubes-claw-tunnel.service" \
  "$PWD/rpm/50-qubes-claw.policy:/etc/qubes/policy.d/50-qubes-claw.policy" \
  "$BIN/qvm-remote-dom0:/usr/bin/qvm-remote-dom0" "$PWD/rpm/qvm-remote-dom0.service:/usr/lib/systemd/system/qvm-remote-dom0.service"
# The simulator's adaptation of qvm-remote-dom0: commands run with its tools.
dpath=$("$BIN/qubes-sim" dom0 "$DIR" -- printenv PATH)
printf 'exec:\n  path: "%s"\n  home: /root\n  pass_env: [QUBES_SIM_DIR, QUBES_SIM_DOMAIN, QUBES_CLAW_ROOT, TMPDIR]\n' "$dpath" > "$(fs dom0 /etc/qubes/qvm-remote-dom0.yaml)"
echo "    fedora-42: qvm-remote, qubes-claw-connect (as qubes-claw.Connect), qubes-claw-proxy"
echo "    dom0: qubes-claw-install, qubes-claw-tunnel (+ unit, packaged policy), qvm-remote-dom0 (+ unit)"

step "The LLM provider: a stand-in that answers like OpenAI"
if [ -n "$iso" ]; then
  # In isolation no VM reaches the host: the stand-in runs in the agent VM
  # as a unit from the template (on Qubes the provider is reached through
  # the VM's netvm instead), so it also comes back after a reboot.
  cat > "$(fs fedora-42 /etc/systemd/system/provider-standin.service)" <<'UNIT'
[Unit]
Description=LLM provider stand-in (demo)
[Service]
ExecStart=/usr/bin/qubes-claw-standin --listen 127.0.0.1:8080
[Install]
WantedBy=multi-user.target
UNIT
  mkdir -p "$(fs fedora-42 /etc/systemd/system/multi-user.target.wants)"
  ln -s ../provider-standin.service "$(fs fedora-42 /etc/systemd/system/multi-user.target.wants/provider-standin.service)"
  echo "    isolation: in the agent VM (a unit from the template) on 127.0.0.1:8080"
else
  "$BIN/qubes-claw-standin" --listen 127.0.0.1:8080 > "$DIR/standin.log" 2>&1 &
  standin=$!
  echo "    on the host's 127.0.0.1:8080, which the VMs share without isolation"
fi
umask 077; echo sk-demo-not-a-real-key > "$(fs dom0 /etc/qubes/qubes-claw-provider.key)"; umask 022

step "The answers file (configs/examples/qubes-claw-install.yaml)"
cp configs/examples/qubes-claw-install.yaml "$(fs dom0 /home/user/answers.yaml)"
[ -n "$iso" ] || printf 'tunnel:\n  listen: ["127.0.0.1:%s", "127.0.0.1:%s"]\n' "$tport" "$gport" >> "$(fs dom0 /home/user/answers.yaml)"
show dom0 "grep -v '^ *#' answers.yaml"
grep -v '^ *#' "$(fs dom0 /home/user/answers.yaml)" | sed 's/^/    /'

step "Install: one progress line per step of the plan"
run "qubes-claw-install --config ~/answers.yaml"

step "Again: every step unchanged"
run "qubes-claw-install --config ~/answers.yaml | tail -n 3"


step "Checks: qvm-remote from the admin VM, the tunnels from dom0, a chat completion through them"
echo "    (the token is the proxy's client token, read from the agent VM with qvm-run)"
run "qubes-claw-tunnel policy explain work qubes-claw.Connect+32125 claw-agent | head -n 3"
TOKEN=""
checks_run() {
  at claw-admin "qvm-remote hostname"
  at dom0 "systemctl is-active qubes-claw-tunnel.service qvm-remote-dom0.service"
  for _ in $(seq 150); do "$BIN/qubes-sim" dom0 "$DIR" -- curl -sf -m 2 "http://127.0.0.1:$tport/health" >/dev/null 2>&1 && break; sleep 0.2; done
  at dom0 "curl -s http://127.0.0.1:$tport/health"
  show dom0 "TOKEN=\$(qvm-run --pass-io claw-agent \"sed -n 's/^token: //p' ~/.config/qubes-claw/qubes-claw-proxy.yaml\")"
  TOKEN=$(qvm-run --pass-io claw-agent "sed -n 's/^token: //p' ~/.config/qubes-claw/qubes-claw-proxy.yaml")
  show dom0 "curl -s -H \"Authorization: Bearer \$TOKEN\" -d '{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' http://127.0.0.1:$tport/v1/chat/completions"
  out "$BIN/qubes-sim" dom0 "$DIR" -- curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}' "http://127.0.0.1:$tport/v1/chat/completions"
}
checks_run

step "Reboot: the agent VM (autostart), the tunnels and qvm-remote-dom0 come back"
run "$BIN/qubes-sim reboot $DIR"
run "qvm-ls --raw-data --fields name,state,class 2>/dev/null"
checks_run
printf '\n%sdemo finished%s\n' "$bold" "$off"
