package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/remote/daemon"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
)

// Commands run in the authorized VM. Fixed strings: nothing from the VM
// ever enters a command line, and the VM only answers what dom0 asks.
const (
	keyShowCommand = "qvm-remote key show"
	keyGenCommand  = "qvm-remote key gen"
)

// KeyItem authorizes a VM for qvm-remote with the pull model: the key is
// made inside the VM and dom0 reads it over qvm-run --pass-io; nothing in
// the VM can push into dom0.
type KeyItem struct {
	VM     string
	KeyDir string
}

func (k *KeyItem) Title() string { return "qvm-remote key of " + k.VM }

func (k *KeyItem) path() string { return filepath.Join(k.KeyDir, k.VM+".key") }

// Diff is "unchanged" once dom0 holds a usable key for the VM: reading the
// VM's key would start the VM on every run. After `qvm-remote key gen
// --force` in the VM, authorize again with qvm-remote-dom0 authorize.
func (k *KeyItem) Diff(_ context.Context, _ *Env) ([]string, error) {
	_, err := keys.Store{Dir: k.KeyDir}.Get(k.VM)
	switch {
	case err == nil:
		return nil, nil
	case errors.Is(err, keys.ErrNoKey):
		return []string{fmt.Sprintf("+ read %s's key (made in the VM if it has none) and store it in %s", k.VM, k.path())}, nil
	}
	return []string{fmt.Sprintf("~ replace the unusable key file %s (%v)", k.path(), err)}, nil
}

func (k *KeyItem) Apply(ctx context.Context, env *Env) error {
	opts := qubes.RunOptions{PassIO: true, NoGUI: true}
	out, err := env.Q.Run(ctx, k.VM, keyShowCommand, opts)
	if err != nil {
		// No key in the VM yet (or an unusable one): make it there.
		if _, gerr := env.Q.Run(ctx, k.VM, keyGenCommand, opts); gerr != nil {
			return fmt.Errorf("generate the key in %s: %w (and reading it failed: %v)", k.VM, gerr, err)
		}
		if out, err = env.Q.Run(ctx, k.VM, keyShowCommand, opts); err != nil {
			return fmt.Errorf("read the key of %s: %w", k.VM, err)
		}
	}
	key, err := keys.Parse(strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("key of %s: %w", k.VM, err)
	}
	if err := env.Rec.noteFile(k.path()); err != nil {
		return err
	}
	if err := env.Rec.mkdirs(k.KeyDir); err != nil {
		return err
	}
	if err := os.Chmod(k.KeyDir, 0o700); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return keys.Store{Dir: k.KeyDir}.Authorize(k.VM, key)
}

// DaemonVMEntry renders the daemon config with a restricted VM's entry set:
// the rest of the file (comments, other VMs, other keys) is kept as is.
func DaemonVMEntry(old []byte, vm daemon.VM) ([]byte, error) {
	var doc yaml.Node
	if len(bytes.TrimSpace(old)) > 0 {
		if err := yaml.Unmarshal(old, &doc); err != nil {
			return nil, err
		}
	}
	if doc.Kind == 0 || (doc.Kind == yaml.DocumentNode && len(doc.Content) == 0) {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	if doc.Kind != yaml.DocumentNode || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a YAML mapping")
	}
	root := doc.Content[0]
	var entry yaml.Node
	if err := entry.Encode(map[string]any{"name": vm.Name, "mode": vm.Mode, "allow": vm.Allow}); err != nil {
		return nil, err
	}
	entry.Style = 0
	var vms *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if strings.EqualFold(root.Content[i].Value, "vms") {
			vms = root.Content[i+1]
		}
	}
	if vms == nil || vms.Kind != yaml.SequenceNode {
		if vms == nil {
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "vms"}, &yaml.Node{Kind: yaml.SequenceNode})
			vms = root.Content[len(root.Content)-1]
		} else {
			*vms = yaml.Node{Kind: yaml.SequenceNode}
		}
	}
	replaced := false
	for i, e := range vms.Content {
		for j := 0; e.Kind == yaml.MappingNode && j+1 < len(e.Content); j += 2 {
			if e.Content[j].Value == "name" && e.Content[j+1].Value == vm.Name {
				vms.Content[i] = &entry
				replaced = true
			}
		}
	}
	if !replaced {
		vms.Content = append(vms.Content, &entry)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// checkDaemonConfig loads data strictly as qvm-remote-dom0 would, so a file
// the daemon refuses is never installed.
func checkDaemonConfig(path string, data []byte) error {
	err := withCandidate(path, data, func(file string) error { return daemon.Spec().CheckFile(file) })
	if err != nil {
		return fmt.Errorf("%w: the qvm-remote-dom0 config would be refused: %v", ErrInvalid, err)
	}
	return nil
}

// withCandidate writes data to a temporary file next to path (or in the
// temporary directory while path's directory does not exist yet) and runs
// check on it: a daemon's own loader judges a config before it is installed.
func withCandidate(path string, data []byte, check func(file string) error) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, ".check-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return check(f.Name())
}
