package events

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCutText covers the bound on free text in events, which used to have
// none, so one log message could make an event line of any size.
func TestCutText(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		wantKeep int
	}{
		{"short text stays whole", "hello", 5},
		{"text at the limit stays whole", strings.Repeat("a", MaxTextBytes), MaxTextBytes},
		{"long ASCII text is cut at the limit", strings.Repeat("a", MaxTextBytes+10), MaxTextBytes},
		{"a character across the limit is kept out whole", strings.Repeat("a", MaxTextBytes-1) + "€€", MaxTextBytes - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cutText(tt.text)
			if !utf8.ValidString(got) {
				t.Fatalf("cutText returned invalid UTF-8")
			}
			kept, note, cut := strings.Cut(got, "… (")
			if len(kept) != tt.wantKeep {
				t.Errorf("kept %d bytes, want %d", len(kept), tt.wantKeep)
			}
			if cut != (tt.wantKeep < len(tt.text)) {
				t.Errorf("note present %v for %d of %d bytes kept", cut, len(kept), len(tt.text))
			}
			if want := fmt.Sprintf("%d bytes cut)", len(tt.text)-tt.wantKeep); cut && note != want {
				t.Errorf("note %q, want %q", note, want)
			}
		})
	}
}
