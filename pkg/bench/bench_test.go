package bench

import (
	"strings"
	"testing"
	"time"
)

func TestQuantiles(t *testing.T) {
	var s Samples
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0, 1 * time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := s.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if s[0] != time.Millisecond {
		t.Error("Quantile must not reorder the samples")
	}
	if r := Ratio(Samples{4, 6, 8}, Samples{2, 3, 4}); r != 2 {
		t.Errorf("ratio = %v", r)
	}
	if (Samples{}).Median() != 0 {
		t.Error("empty median")
	}
}

func TestCompareInterleaves(t *testing.T) {
	var order []string
	o, b := Compare(t, 3, func() error { order = append(order, "o"); return nil }, func() error { order = append(order, "b"); return nil })
	if len(o) != 3 || len(b) != 3 {
		t.Fatalf("samples %d %d", len(o), len(b))
	}
	if got := strings.Join(order, ""); got != "obobboob" {
		t.Errorf("order %q, want warm-up, then each round the other goes first", got)
	}
}

func TestAlternateAttributes(t *testing.T) {
	var order []string
	o, b := alternate(4,
		func() time.Duration { order = append(order, "o"); return 1 },
		func() time.Duration { order = append(order, "b"); return 2 })
	if got := strings.Join(order, ""); got != "obboobbo" {
		t.Errorf("order %q", got)
	}
	for i := range o {
		if o[i] != 1 || b[i] != 2 {
			t.Fatalf("samples mixed up: ours %v, base %v", o, b)
		}
	}
}
