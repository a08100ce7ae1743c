package mask

import (
	"testing"
)

func TestMaskBytesMatchesMask(t *testing.T) {
	m, _ := New(map[string]string{"A": "alpha-secret", "B": "beta-token-1", "MULTI": "first-line\nsecond-line"})

	tests := []struct {
		name string
		text string
	}{
		{"no secret", "nothing to hide here, not even alpha or beta"},
		{"empty line", ""},
		{"secret at the start", "alpha-secret then text"},
		{"secret at the end", "text then beta-token-1"},
		{"secret alone", "alpha-secret"},
		{"two secrets", "alpha-secret and beta-token-1"},
		{"a prefix of a secret at the end", "text then alpha-secr"},
		{"a line of a multi-line secret", "> second-line <"},
		{"a near miss before a secret", "alpha-secreT alpha-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := m.replacer.Replace(tt.text)
			if got := m.Mask(tt.text); got != want {
				t.Errorf("Mask(%q) = %q, want %q", tt.text, got, want)
			}
			if got := string(m.MaskBytes([]byte(tt.text))); got != want {
				t.Errorf("MaskBytes(%q) = %q, want %q", tt.text, got, want)
			}
		})
	}
}

func TestMaskBytesKeepsLineWithoutSecret(t *testing.T) {
	m, _ := New(map[string]string{"A": "alpha-secret"})
	line := []byte("alpha and secret, but not together")

	got := m.MaskBytes(line)
	if &got[0] != &line[0] {
		t.Errorf("MaskBytes copied a line without a secret, want the line itself")
	}
	if allocs := testing.AllocsPerRun(100, func() { m.MaskBytes(line) }); allocs != 0 {
		t.Errorf("MaskBytes allocated %v times for a line without a secret, want 0", allocs)
	}
}
