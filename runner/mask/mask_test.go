package mask

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

func TestMaskEveryForm(t *testing.T) {
	const value = `p@ss/word+"<x>"&more`
	m, warnings := New(map[string]string{"API": value})
	if len(warnings) != 0 {
		t.Fatalf("warnings %q, want none", warnings)
	}

	tests := []struct {
		name string
		text string
	}{
		{"raw value", value},
		{"standard base64", base64.StdEncoding.EncodeToString([]byte(value))},
		{"unpadded base64", base64.RawStdEncoding.EncodeToString([]byte(value))},
		{"URL-safe base64", base64.URLEncoding.EncodeToString([]byte(value))},
		{"query escape", url.QueryEscape(value)},
		{"path escape", url.PathEscape(value)},
		{"JSON escape", `p@ss/word+\"\u003cx\u003e\"\u0026more`},
		{"JSON escape without HTML escaping", `p@ss/word+\"<x>\"&more`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.Mask("before " + tt.text + " after")
			if got != "before ***API*** after" {
				t.Errorf("Mask(%q) = %q, want the placeholder", tt.text, got)
			}
		})
	}
}

func TestMaskMultiLineValue(t *testing.T) {
	m, warnings := New(map[string]string{"KEY": "-----BEGIN KEY-----\r\nabcdefgh\nij\n-----END KEY-----\n"})

	if got := m.Mask("line: abcdefgh"); got != "line: ***KEY***" {
		t.Errorf("a single line of the value: got %q", got)
	}
	if got := m.Mask("-----BEGIN KEY-----"); got != "***KEY***" {
		t.Errorf("first line: got %q", got)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `line 3 of secret "KEY" is shorter than 4 bytes`) {
		t.Errorf("warnings %q, want one for the 2-byte line 3", warnings)
	}
}

func TestShortSecretsWarnAndStayUnmasked(t *testing.T) {
	m, warnings := New(map[string]string{"PIN": "123", "EMPTY": "", "OK": "abcd"})

	if got := m.Mask("123 abcd"); got != "123 ***OK***" {
		t.Errorf("Mask = %q, want only the 4-byte secret masked", got)
	}
	if len(warnings) != 1 || warnings[0] != `secret "PIN" is shorter than 4 bytes and is not masked in the output; use a longer value` {
		t.Errorf("warnings %q, want one naming PIN", warnings)
	}
	for _, w := range warnings {
		if strings.Contains(w, "123") {
			t.Errorf("warning %q shows the secret value", w)
		}
	}
}

func TestMaskPrefersLongestForm(t *testing.T) {
	m, _ := New(map[string]string{"SHORT": "abcd", "LONG": "abcdefgh"})

	if got := m.Mask("abcdefgh abcd"); got != "***LONG*** ***SHORT***" {
		t.Errorf("Mask = %q, want the longer secret to win where both match", got)
	}
}

func TestNilMaskerMasksNothing(t *testing.T) {
	var m *Masker
	if got := m.Mask("text"); got != "text" {
		t.Errorf("nil Masker changed text to %q", got)
	}
	if got := m.SafeCut([]byte("text"), 2); got != 2 {
		t.Errorf("nil Masker moved the cut to %d", got)
	}
}

func TestSafeCut(t *testing.T) {
	m, _ := New(map[string]string{"S": "secret"})

	tests := []struct {
		name string
		buf  string
		cut  int
		want int
	}{
		{"cut outside any secret stays", "xxxxsecretxx", 3, 3},
		{"cut at the start of a secret stays", "xxxxsecretxx", 4, 4},
		{"cut inside a secret moves to its start", "xxxxsecretxx", 7, 4},
		{"cut right after a secret stays", "xxxxsecretxx", 10, 10},
		{"secret at the start keeps the cut", "secretxxxx", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.SafeCut([]byte(tt.buf), tt.cut); got != tt.want {
				t.Errorf("SafeCut(%q, %d) = %d, want %d", tt.buf, tt.cut, got, tt.want)
			}
		})
	}
}

func BenchmarkMaskLine(b *testing.B) {
	secrets := map[string]string{}
	for _, name := range []string{"A", "B", "C", "D", "E", "F", "G", "H"} {
		secrets[name] = strings.Repeat(strings.ToLower(name), 12) + "-token-value"
	}
	m, _ := New(secrets)
	line := "ok   github.com/octavo-ci/octavo/runner/engine  0.412s  coverage: 81.2% of statements with aaaaaaaaaaaa-token-value"
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Mask(line)
	}
}

func BenchmarkMaskLineWithoutSecret(b *testing.B) {
	secrets := map[string]string{}
	for _, name := range []string{"A", "B", "C", "D", "E", "F", "G", "H"} {
		secrets[name] = strings.Repeat(strings.ToLower(name), 12) + "-token-value"
	}
	m, _ := New(secrets)
	line := []byte("ok   github.com/octavo-ci/octavo/runner/engine  0.412s  coverage: 81.2% of statements in 12 packages")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		_ = m.MaskBytes(line)
	}
}
