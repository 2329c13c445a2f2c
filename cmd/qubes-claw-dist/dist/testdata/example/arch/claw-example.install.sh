echo "post_install $1" >> /var/lib/claw-example/scriptlets.log
