// Package webadmin is qubes-claw-admin, dom0's local admin panel: one page on
// a loopback address that shows whether qubes-claw is up (the qvm-remote
// daemon and the VMs it serves, the agent VM, the tunnels, the proxy and the
// OpenClaw gateway behind them), follows qvm-remote's audit log live over
// server-sent events, and offers the few actions that are safe to take from a
// browser: start or stop the qvm-remote daemon for this boot, restart the
// tunnel daemon, revoke a VM's key after a confirmation. Enabling the daemon
// at boot is deliberately not an action: the page shows the terminal command,
// which asks the admin to type "yes".
//
// dom0 is offline and its browser also visits VM-controlled content (through
// copy and paste, if nothing else), so the server trusts nothing about a
// request but the socket it came in on:
//
//   - it listens on loopback only (Validate refuses anything else);
//   - a request whose Host header is not the panel's own address is refused,
//     so a rebound DNS name cannot make another origin same-origin with it;
//   - every state-changing request is a POST carrying a CSRF token bound to a
//     SameSite=Strict cookie, and a cross-site Origin or Sec-Fetch-Site is
//     refused outright;
//   - every response carries a strict Content-Security-Policy (no inline
//     script or style, nothing from another origin), and every asset is
//     embedded in the binary.
//
// The page is rendered on the server by html/template (so every value from
// the system is escaped once, in one place); its small script only swaps in
// re-rendered fragments and appends audit lines as text.
package webadmin
