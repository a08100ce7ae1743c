package events

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/octavo-ci/octavo/schema"
)

func encodeWithStdlib(t testing.TB, ev any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAppendShOutputMatchesEncodingJSON(t *testing.T) {
	lines := []string{
		"",
		"plain ascii",
		`quotes " and \ backslash`,
		"tab\tnewline\ncr\rbell\x07 del\x7f nul\x00 esc\x1b[31m",
		"<html> & ampersand",
		"unicode é € 😀 and separators \u2028 \u2029",
		"invalid \xff\xfe bytes \xc3 and truncated \xe2\x82",
	}
	for _, line := range lines {
		ev := &schema.ShOutput{Envelope: schema.Envelope{AtMs: 1764850000123, Type: schema.TypeShOutput}, JobID: "job_1-x", Seq: 12, Stream: schema.Stderr, Line: line}
		got := appendShOutput(nil, ev)
		want := encodeWithStdlib(t, ev)
		if !bytes.Equal(got, want) {
			t.Errorf("line %q:\ngot  %s\nwant %s", line, got, want)
		}
		fromBytes := appendOutputPrefix(nil, ev.AtMs, ev.Type, ev.JobID, ev.Seq, ev.Stream)
		fromBytes = append(appendString(fromBytes, []byte(line)), "}\n"...)
		if !bytes.Equal(fromBytes, want) {
			t.Errorf("line %q from bytes:\ngot  %s\nwant %s", line, fromBytes, want)
		}
	}
}

func FuzzAppendShOutput(f *testing.F) {
	f.Add("seed line", "job", 1)
	f.Add("\xff\u2028\"\\", "a", 99)
	f.Fuzz(func(t *testing.T, line, job string, seq int) {
		ev := &schema.ShOutput{Envelope: schema.Envelope{AtMs: 1, Type: schema.TypeShOutput}, JobID: job, Seq: seq, Stream: schema.Stdout, Line: line}
		want := encodeWithStdlib(t, ev)
		if got := appendShOutput(nil, ev); !bytes.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
		// The path for lines read as bytes must encode the same.
		got := appendOutputPrefix(nil, 1, schema.TypeShOutput, job, seq, schema.Stdout)
		got = append(appendString(got, []byte(line)), "}\n"...)
		if !bytes.Equal(got, want) {
			t.Errorf("from bytes got %q, want %q", got, want)
		}
	})
}
