package plan

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/qubes-claw/qubes-claw/pkg/policy"
)

// policyName is what qrexec loads from policy.d without refusing every call
// (qubes.md §1.1: only 0-9 a-z _ . - in a loaded file name), plus the NN-
// prefix that orders it.
var policyName = regexp.MustCompile(`^[0-9][0-9]-[0-9a-z_.-]+\.policy$`)

// ValidatePolicyFile checks the policy file's location and name.
func ValidatePolicyFile(path string) error {
	if filepath.Base(filepath.Dir(path)) != "policy.d" {
		return fmt.Errorf("%s is not in a policy.d directory", path)
	}
	if !policyName.MatchString(filepath.Base(path)) {
		return fmt.Errorf("%s: a policy file is named NN-name.policy with only 0-9 a-z _ . - (any other name makes qrexec refuse every call)", filepath.Base(path))
	}
	return nil
}

// checkPolicy validates a policy file before it is installed: name and
// syntax, parsed as qrexec would.
func checkPolicy(path string, data []byte) error {
	if err := ValidatePolicyFile(path); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p, err := policy.Parse(filepath.Base(path), bytes.NewReader(data))
	if err == nil {
		err = p.Err()
	}
	if err != nil {
		return fmt.Errorf("%w: policy %s: %v", ErrInvalid, path, err)
	}
	return nil
}
