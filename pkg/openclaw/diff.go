package openclaw

import "strings"

// Diff returns a line diff of a and b: unchanged lines start with two
// spaces, removed ones with "- ", added ones with "+ ". Runs of more than
// three unchanged lines are elided. The files are small, so the quadratic
// longest-common-subsequence table is fine.
func Diff(a, b string) string {
	x := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	y := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var lines []string
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			lines = append(lines, "  "+x[i])
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, "- "+x[i])
			i++
		default:
			lines = append(lines, "+ "+y[j])
			j++
		}
	}
	return strings.Join(elide(lines), "\n") + "\n"
}

// elide keeps changed lines with one line of context around them.
func elide(lines []string) []string {
	keep := make([]bool, len(lines))
	for k, l := range lines {
		if !strings.HasPrefix(l, "  ") {
			for d := -1; d <= 1; d++ {
				if k+d >= 0 && k+d < len(lines) {
					keep[k+d] = true
				}
			}
		}
	}
	var out []string
	skipped := false
	for k, l := range lines {
		if keep[k] {
			out = append(out, l)
			skipped = false
		} else if !skipped {
			out = append(out, "  ...")
			skipped = true
		}
	}
	return out
}
