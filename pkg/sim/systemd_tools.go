package sim

// systemdTools are systemctl and loginctl, as the project uses them.
var systemdTools = map[string]tool{}
