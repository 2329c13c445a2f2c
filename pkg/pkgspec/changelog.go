package pkgspec

import "time"

// Change is one changelog entry of every package, shown by `rpm -q
// --changelog` and rendered into the Builder v2 spec.
type Change struct {
	// Version is VERSION-REL, without epoch (the epoch differs per package).
	Version string
	Date    time.Time
	Author  string
	Notes   []string
}

// Changelog returns the entries, newest first.
func Changelog() []Change {
	return []Change{
		{
			Version: "0.1.0-1",
			Date:    time.Date(2026, time.November, 22, 0, 0, 0, 0, time.UTC),
			Author:  Maintainer,
			Notes: []string{
				"First Go release, replacing the 1.x Python qvm-remote packages",
				"qvm-remote-dom0: unit installed, never enabled by the package",
			},
		},
	}
}

// SpecChangelog renders the changelog as an RPM spec %changelog body.
func SpecChangelog() string {
	var b []byte
	for i, c := range Changelog() {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, "* "+c.Date.Format("Mon Jan 02 2006")+" "+c.Author+" - "+c.Version+"\n"...)
		for _, n := range c.Notes {
			b = append(b, "- "+n+"\n"...)
		}
	}
	return string(b)
}
