package sim

// adminTools are the qvm-* commands that read and change qubes state.
var adminTools = map[string]tool{}
