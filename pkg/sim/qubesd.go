package sim

import (
	"context"
	"net"
	"os"
)

// qubesdName is the name under which the qubes-sim binary is qubesd.
const qubesdName = "qubesd"

// qubesdUnit is qubes-core-admin linux/systemd/qubesd.service, which
// CreateMachine installs (enabled) in dom0.
const qubesdUnit = `[Unit]
Description=Qubes OS daemon
After=qubes-db-dom0.service libvirtd.service virtxend.service virtnodedevd.service qubes-qmemman.service
After=remote-fs.target
Before=systemd-user-sessions.service

[Service]
Type=notify
ExecStart=/usr/bin/qubesd
StandardOutput=syslog
KillMode=process
Restart=on-failure
RestartSec=1s

[Install]
WantedBy=multi-user.target
`

// runQubesd stands for qubesd, started by qubesd.service at dom0's boot. The
// simulated qvm-* tools do qubesd's work themselves (they edit the qubes
// state directly), so all it has to do is what units depending on
// qubesd.service observe: become active (READY=1 on NOTIFY_SOCKET, as the
// real Type=notify daemon) and stay active until stopped.
func runQubesd(ctx context.Context) int {
	if sock := os.Getenv("NOTIFY_SOCKET"); sock != "" {
		if c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"}); err == nil {
			c.Write([]byte("READY=1"))
			c.Close()
		}
	}
	<-ctx.Done()
	return 0
}
