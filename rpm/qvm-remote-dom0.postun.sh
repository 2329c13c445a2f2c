# %postun of qvm-remote-dom0 ($1 = instances left afterwards).
# Forget the removed unit, and on upgrade ($1 >= 1) restart the daemon only if
# it was running, so it runs the new binary; a stopped daemon stays stopped.
systemctl daemon-reload >/dev/null 2>&1 || :
if [ "$1" -ge 1 ]; then
	systemctl try-restart qvm-remote-dom0.service >/dev/null 2>&1 || :
fi
