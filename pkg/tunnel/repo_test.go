package tunnel

import (
	"os"
	"path/filepath"
)

// readRepoFile reads a file relative to the repository root.
func readRepoFile(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join("..", "..", rel))
}
