# %post of qubes-claw-dom0 ($1 = number of instances after this install).
# Make systemd see the new or changed units. Nothing is enabled or started,
# and no preset file is shipped: the tunnels need the agent VM's name in
# /etc/qubes/qubes-claw-tunnel.yaml first (qubes-claw-install writes it and
# enables the unit), and the admin panel is a dom0 control surface the admin
# opts into (systemctl enable --now qubes-claw-admin). Failures are ignored so
# a chroot install still works.
systemctl daemon-reload >/dev/null 2>&1 || :
