# %preun of qubes-claw-dom0 ($1 = instances left afterwards).
# On erase ($1 = 0) stop the daemons and drop their enablement, so no dangling
# wants/ link stays behind. Upgrades ($1 >= 1) leave them alone.
if [ "$1" -eq 0 ]; then
	systemctl --no-reload disable --now qubes-claw-tunnel.service qubes-claw-admin.service >/dev/null 2>&1 || :
fi
