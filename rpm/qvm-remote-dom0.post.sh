# %post of qvm-remote-dom0 ($1 = number of instances after this install).
# Make systemd see the new or changed unit. Never enable or start it: the
# executor stays off until the admin runs `qvm-remote-dom0 enable` and
# confirms the risk. Failures are ignored so a chroot install still works.
systemctl daemon-reload >/dev/null 2>&1 || :
