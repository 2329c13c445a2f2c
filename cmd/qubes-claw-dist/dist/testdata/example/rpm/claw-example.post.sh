systemctl daemon-reload >/dev/null 2>&1 || :
echo "post $1" >> /var/lib/claw-example/scriptlets.log
