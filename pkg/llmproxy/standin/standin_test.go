package standin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFixturesMatchProviders: the embedded fixtures are the provider
// packages' recorded-shape testdata, byte for byte.
func TestFixturesMatchProviders(t *testing.T) {
	ents, err := fixtures.ReadDir("fixtures")
	if err != nil || len(ents) == 0 {
		t.Fatalf("fixtures: %v", err)
	}
	for _, e := range ents {
		provider, name, _ := strings.Cut(e.Name(), "_")
		want, err := os.ReadFile(filepath.Join("..", provider, "testdata", name))
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		got, _ := fixtures.ReadFile("fixtures/" + e.Name())
		if string(got) != string(want) {
			t.Errorf("%s differs from ../%s/testdata/%s", e.Name(), provider, name)
		}
	}
}
