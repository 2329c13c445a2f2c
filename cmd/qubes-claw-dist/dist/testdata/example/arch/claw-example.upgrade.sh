echo "post_upgrade $1 $2" >> /var/lib/claw-example/scriptlets.log
