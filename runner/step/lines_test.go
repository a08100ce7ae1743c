package step

import (
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/octavo-ci/octavo/runner/mask"
)

// appendTo returns an emit function that copies every line to *lines.
func appendTo(lines *[]string) func([][]byte) {
	return func(batch [][]byte) {
		for _, l := range batch {
			*lines = append(*lines, string(l))
		}
	}
}

// split splits input twice, reading it one byte at a time and all at once,
// and fails the test unless both give the same lines, because pieces must
// not depend on how the pipe happens to chunk the output.
func split(t *testing.T, input string, maxLine int, m *mask.Masker) []string {
	t.Helper()
	var lines, whole []string
	var capture boundedBuffer
	if err := splitLines(iotest.OneByteReader(strings.NewReader(input)), maxLine, m, &capture, appendTo(&lines)); err != nil {
		t.Fatalf("splitLines one byte at a time: %v", err)
	}
	if err := splitLines(strings.NewReader(input), maxLine, m, &capture, appendTo(&whole)); err != nil {
		t.Fatalf("splitLines in one read: %v", err)
	}
	if !slices.Equal(whole, lines) {
		t.Fatalf("lines read at once %q, want %q as read one byte at a time", whole, lines)
	}
	return lines
}

func TestSplitLines(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		maxLine int
		want    []string
	}{
		{"lines without terminator at the end", "a\nb", 8, []string{"a", "b"}},
		{"CRLF terminators are removed", "a\r\nb\r\n", 8, []string{"a", "b"}},
		{"bare carriage returns are kept", "10%\r50%\r100%\n", 32, []string{"10%\r50%\r100%"}},
		{"empty lines are kept", "\n\nx\n", 8, []string{"", "", "x"}},
		{"long line is split into pieces", "abcdefghij\n", 4, []string{"abcd", "efgh", "ij"}},
		{"exact multiple adds no empty piece", "abcdefgh\nz\n", 4, []string{"abcd", "efgh", "z"}},
		{"long line without terminator", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"piece never splits a character", "ab€cd\n", 4, []string{"ab", "€c", "d"}},
		{"invalid bytes become one replacement each run", "a\xff\xfeb\n\xc3\n", 8, []string{"a\uFFFDb", "\uFFFD"}},
		{"empty input emits nothing", "", 8, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := split(t, tt.input, tt.maxLine, nil)
			if !slices.Equal(got, tt.want) {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSplitLinesNeverCutsASecret(t *testing.T) {
	m, _ := mask.New(map[string]string{"S": "SECRETVALUE"})
	input := strings.Repeat("x", 10) + "SECRETVALUE" + strings.Repeat("y", 30) + "\n"

	got := split(t, input, 16, m)
	for _, piece := range got {
		if strings.Contains(m.Mask(piece), "SECRET") || strings.Contains(m.Mask(piece), "VALUE") {
			t.Errorf("piece %q leaves part of the secret unmasked; pieces %q", piece, got)
		}
	}
	if strings.Join(got, "") != strings.TrimSuffix(input, "\n") {
		t.Errorf("pieces %q do not join to the input line", got)
	}
}

func TestSplitLinesCapturesBoundedBytes(t *testing.T) {
	capture := boundedBuffer{limit: 5}
	err := splitLines(strings.NewReader("0123456789\n"), 64, nil, &capture, func([][]byte) {})
	if err != nil {
		t.Fatal(err)
	}
	if string(capture.buf) != "01234" || !capture.truncated {
		t.Errorf("captured %q truncated=%v, want 01234 and truncated", capture.buf, capture.truncated)
	}
}

func TestSplitLinesReturnsReadError(t *testing.T) {
	var lines []string
	r := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(io.ErrUnexpectedEOF))
	err := splitLines(r, 64, nil, &boundedBuffer{}, appendTo(&lines))
	if err != io.ErrUnexpectedEOF {
		t.Errorf("error %v, want io.ErrUnexpectedEOF", err)
	}
	if !slices.Equal(lines, []string{"partial"}) {
		t.Errorf("lines %q, want the partial line emitted before the error", lines)
	}
}
