# %postun of qubes-claw-dom0 ($1 = instances left afterwards).
# Forget removed units, and on upgrade ($1 >= 1) restart the daemons only if
# they were running, so they run the new binaries.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -ge 1 ]; then
	systemctl try-restart qubes-claw-tunnel.service qubes-claw-admin.service >/dev/null 2>&1 || :
fi
