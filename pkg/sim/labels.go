package sim

// Labels are the built-in Qubes labels in index order (1..8), the order
// admin.label.List returns them and qvm-create lists them in its error
// (qubes-core-admin qubes/config.py max_default_label, qubes/app.py).
var Labels = []string{"red", "orange", "yellow", "green", "gray", "blue", "purple", "black"}

// lookupLabel resolves a label the way Qubes' app.get_label does: by name,
// by "label-N", or by its index as a decimal string. ok is false for an
// unknown label.
func lookupLabel(v string) (name string, ok bool) {
	for _, l := range Labels {
		if l == v {
			return l, true
		}
	}
	idx := v
	if len(v) > len("label-") && v[:len("label-")] == "label-" {
		idx = v[len("label-"):]
	}
	n := 0
	for _, c := range idx {
		if c < '0' || c > '9' {
			return "", false
		}
		n = n*10 + int(c-'0')
		if n > len(Labels) {
			return "", false
		}
	}
	if idx == "" || n < 1 {
		return "", false
	}
	return Labels[n-1], true
}
