# %preun of qvm-remote-dom0 ($1 = instances left afterwards).
# On erase ($1 = 0) stop the daemon and drop an enablement the admin made, so
# no dangling wants/ link stays behind. Upgrades ($1 >= 1) leave it alone.
if [ "$1" -eq 0 ]; then
	systemctl --no-reload disable --now qvm-remote-dom0.service >/dev/null 2>&1 || :
fi
