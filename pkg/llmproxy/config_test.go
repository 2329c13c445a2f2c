package llmproxy

import (
	"path/filepath"
	"testing"
)

// TestExampleConfigs: every example in configs/examples loads strictly and
// passes validation.
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/examples/qubes-claw-proxy-*.yaml")
	if len(files) < 4 {
		t.Fatalf("found %d examples, want one per provider", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Setenv("QCPROXY_CONFIG", f)
			cfg, _, err := Spec().Load(nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Base(f); want != "qubes-claw-proxy-"+cfg.Provider+".yaml" {
				t.Errorf("%s selects provider %s", want, cfg.Provider)
			}
		})
	}
}
