package sim

import (
	"bufio"
	"fmt"
	"strings"
)

const qvmTagsUsage = `usage: qvm-tags [--verbose] [--quiet] [--help] [--version]
                VMNAME {list,ls,l,add,a,set,del,d,unset,u} ...
`

// Sub-command usages, as argparse prints them for "qvm-tags VMNAME CMD".
var qvmTagsSubUsage = map[string]string{
	"list": `usage: qvm-tags VMNAME list [--verbose] [--quiet] [--help] [--version] [tag]
`,
	"add": `usage: qvm-tags VMNAME add [--verbose] [--quiet] [--help] [--version]
                           tag [tag ...]
`,
	"del": `usage: qvm-tags VMNAME del [--verbose] [--quiet] [--help] [--version] tag
`,
}

var tagCommands = map[string]string{
	"list": "list", "ls": "list", "l": "list",
	"add": "add", "a": "add", "set": "add",
	"del": "del", "d": "del", "unset": "del", "u": "del",
}

// validateTag is qubes.vm.Tags.validate_tag (qubes.md §3.5).
func validateTag(tag string) error {
	if tag == "" {
		return propErrorf("tag cannot be empty")
	}
	for _, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return propErrorf("disallowed characters")
		}
	}
	return nil
}

func qvmTags(c *Call) int {
	p := newQAParser(c, qvmTagsUsage)
	pos, unknown, err := p.parse(c.Args)
	if err == nil {
		err = checkPositionals(pos, nil, []string{"VMNAME"}, -1)
	}
	if err != nil {
		return p.fail(err)
	}
	cmd := "list"
	var tags []string
	if len(pos) > 1 {
		var ok bool
		if cmd, ok = tagCommands[pos[1]]; !ok {
			return p.fail(usageErrorf("argument command: invalid choice: %s (choose from 'list', 'ls', 'l', 'add', 'a', 'set', 'del', 'd', 'unset', 'u')", pyRepr(pos[1])))
		}
		tags = pos[2:]
		// The sub-parser reports its own missing arguments under its own
		// usage and prog ("qvm-tags VMNAME add").
		if (cmd == "add" || cmd == "del") && len(tags) == 0 {
			fmt.Fprint(c.Stdio.Err, qvmTagsSubUsage[cmd])
			fmt.Fprintf(c.Stdio.Err, "%s VMNAME %s: error: the following arguments are required: tag\n", c.Name, cmd)
			return 2
		}
	}
	max := len(tags)
	switch cmd {
	case "list":
		max = 1
	case "del":
		max = 1 // exactly one tag per call
	}
	if err := checkPositionals(tags, unknown, nil, max); err != nil {
		return p.fail(err)
	}
	tags = tags[:min(len(tags), max)]

	out := bufio.NewWriter(c.Stdio.Out)
	defer out.Flush()
	code := 0
	if cmd == "list" {
		err = c.Machine.View(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			d := ds[0]
			if len(tags) == 0 {
				if len(d.Tags) > 0 {
					fmt.Fprintln(out, strings.Join(d.Tags, "\n"))
				}
				return nil
			}
			if !d.HasTag(tags[0]) {
				code = 1
				return nil
			}
			fmt.Fprintln(out, tags[0])
			return nil
		})
	} else {
		// Each tag is its own Admin API call: a refused tag leaves the
		// earlier ones applied, so the state is saved and the error
		// reported afterwards.
		var callErr error
		err = c.Machine.Update(func(st *State) error {
			ds, err := resolveDomains(st, pos[:1])
			if err != nil {
				return err
			}
			d := ds[0]
			for _, t := range tags {
				if cmd == "add" {
					// admin.vm.tag.Set validates; a bad tag stops the loop
					// with the earlier ones already added.
					if err := validateTag(t); err != nil {
						callErr = err
						return nil
					}
					d.AddTag(t)
				} else {
					// admin.vm.tag.Remove of an absent tag is refused by
					// qubesd and ignored by tags.discard.
					d.DelTag(t)
				}
			}
			return nil
		})
		if err == nil {
			err = callErr
		}
	}
	if err != nil {
		return p.fail(err)
	}
	return code
}
