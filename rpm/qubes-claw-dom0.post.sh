# %post of qubes-claw-dom0 ($1 = number of instances after this install).
# Make systemd see the new or changed units. Nothing is enabled or started:
# the tunnels need the agent VM's name in /etc/qubes/qubes-claw-tunnel.yaml
# first. Failures are ignored so a chroot install still works.
systemctl daemon-reload >/dev/null 2>&1 || :
