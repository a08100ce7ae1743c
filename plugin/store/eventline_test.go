package store

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/schema"
)

func TestScanEventHeaderMatchesJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		line string
	}{
		{"an output line is read", `{"at_ms":17,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"hello, world"}`},
		{"a long plain line is read", `{"type":"sh_output","job_id":"j","line":"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"}`},
		{"escapes in the line are checked", `{"type":"sh_output","job_id":"j","line":"tab\there \"quoted\" \u00e9 back\\slash"}`},
		{"whitespace around members is allowed", " { \"type\" : \"log\" , \"job_id\" : \"j\" , \"n\" : -1.5e3 , \"b\" : true , \"z\" : null } "},
		{"an object without type is rejected", `{"job_id":"j"}`},
		{"an empty type is rejected", `{"type":""}`},
		{"a nested value is left to the full decoder", `{"type":"run_started","jobs":[{"id":"a"}]}`},
		{"a control character inside a string is rejected", "{\"type\":\"sh_output\",\"line\":\"a\x01b\"}"},
		{"a control character late in a long string is rejected", "{\"type\":\"sh_output\",\"line\":\"abcdefghijklmnop\x1fq\"}"},
		{"an unknown escape is rejected", `{"type":"sh_output","line":"a\qb"}`},
		{"a short unicode escape is rejected", `{"type":"sh_output","line":"\u12"}`},
		{"an unterminated string is rejected", `{"type":"sh_output","line":"abcdefghijklmnop`},
		{"a missing closing brace is rejected", `{"type":"sh_output"`},
		{"text after the object is rejected", `{"type":"sh_output"} x`},
		{"a trailing comma is rejected", `{"type":"sh_output",}`},
		{"a fractional at_ms is left to the full decoder", `{"type":"sh_output","at_ms":1.5}`},
		{"a number with a leading zero is rejected", `{"type":"sh_output","n":01}`},
		{"a negative at_ms is read", `{"type":"log","at_ms":-5}`},
		{"the largest at_ms is read", `{"type":"log","at_ms":9223372036854775807}`},
		{"an at_ms past int64 is left to the full decoder", `{"type":"log","at_ms":9223372036854775808}`},
		{"the runner's layout with a stderr line is read", `{"at_ms":5,"type":"sh_output","job_id":"build","seq":12,"stream":"stderr","line":"warning: \"x\""}`},
		{"the runner's layout with an escaped job is left to the full decoder", `{"at_ms":5,"type":"sh_output","job_id":"b\u0075ild","seq":1,"stream":"stdout","line":"x"}`},
		{"the runner's layout with a member after line is read", `{"at_ms":5,"type":"sh_output","job_id":"j","seq":1,"stream":"stdout","line":"x","more":1}`},
		{"the runner's layout cut after line is rejected", `{"at_ms":5,"type":"sh_output","job_id":"j","seq":1,"stream":"stdout","line":"x"`},
		{"the runner's layout with a bad seq is rejected", `{"at_ms":5,"type":"sh_output","job_id":"j","seq":1x,"stream":"stdout","line":"x"}`},
		{"the runner's layout with text after it is rejected", `{"at_ms":5,"type":"sh_output","job_id":"j","seq":1,"stream":"stdout","line":"x"}}`},
		{"a line cut after the at_ms key is rejected", `{"at_ms":`},
		{"a line cut after a later key is rejected", `{"type":"log","at_ms":`},
		{"plain text is rejected", `not json`},
		{"an empty line is rejected", ``},
		{"an escaped key is left to the full decoder", `{"typ\u0065":"sh_output"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, ok := ScanEventHeader([]byte(tc.line), "j")
			if ok && !json.Valid([]byte(tc.line)) {
				t.Fatalf("ScanEventHeader(%q) accepted invalid JSON", tc.line)
			}
			if !ok {
				return
			}
			var want struct {
				Type  string `json:"type"`
				JobID string `json:"job_id"`
				AtMs  int64  `json:"at_ms"`
			}
			if err := json.Unmarshal([]byte(tc.line), &want); err != nil {
				t.Fatal(err)
			}
			if h.Type != want.Type || h.JobID != want.JobID || h.AtMs != want.AtMs {
				t.Errorf("ScanEventHeader(%q) = %+v, want %+v", tc.line, h, want)
			}
		})
	}
}

func TestScanEventHeaderAcceptsFlatEvents(t *testing.T) {
	for _, line := range []string{
		`{"at_ms":17,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"hello, world"}`,
		`{"at_ms":5,"type":"sh_output","job_id":"build","seq":12,"stream":"stderr","line":"warning: \"x\""}`,
		`{"at_ms":5,"type":"sh_output","job_id":"j","seq":1,"stream":"stdout","line":"x","more":1}`,
		`{"type":"sh_output","job_id":"j","line":"tab\there \"quoted\" \u00e9 back\\slash"}`,
		" { \"type\" : \"log\" , \"job_id\" : \"j\" , \"n\" : -1.5e3 , \"b\" : true , \"z\" : null } ",
	} {
		if _, ok := ScanEventHeader([]byte(line), ""); !ok {
			t.Errorf("ScanEventHeader(%q) rejected a valid flat event", line)
		}
	}
}

// outputStream is a stream of event lines that exercises OutputScanner's
// shortcut: runs of one step's lines, a new millisecond, a new step, a
// new stream, and lines that share the remembered part but are invalid.
var outputStream = []string{
	`{"at_ms":1764850000001,"type":"run_started","schema":1,"jobs":[{"id":"a"}]}`,
	`{"at_ms":1764850000001,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"one"}`,
	`{"at_ms":1764850000001,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"two \"quoted\" \u00e9"}`,
	`{"at_ms":1764850000001,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":""}`,
	`{"at_ms":1764850000001,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"unterminated}`,
	`{"at_ms":1764850000001,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"x"} trailing`,
	`{"at_ms":1764850000001,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"x","more":1}`,
	`{"at_ms":1764850000001,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"x"}}`,
	"{\"at_ms\":1764850000001,\"type\":\"sh_output\",\"job_id\":\"a\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"tab\x09raw\"}",
	`{"at_ms":1764850000001,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"bad \q escape"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"next millisecond"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":1.5,"stream":"stdout","line":"fractional seq"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":99999999999999999999,"stream":"stdout","line":"seq past int64"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":"1","stream":"stdout","line":"string seq"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":1,"stream":true,"line":"boolean stream"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":5}`,
	"{\"at_ms\":1764850000002,\"type\":\"sh_output\",\"job_id\":\"t\xffst\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"invalid UTF-8 in the job\"}",
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"x","Job_ID":"b"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":1,"stream":"stderr","line":"other stream"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"back"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"b","seq":1,"stream":"stdout","line":"other job"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"b","seq":2,"stream":"stdout","line":"next step"}`,
	`{"at_ms":01764850000002,"type":"sh_output","job_id":"b","seq":2,"stream":"stdout","line":"leading zero"}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"b","seq":2,"stream":"stdout","line":"same again"}`,
	`{"at_ms":1764850000002,"type":"sh_finished","job_id":"b","seq":2,"exit_code":0}`,
	`{"at_ms":1764850000002,"type":"sh_output","job_id":"b","seq":2,"stream":"stdout","line":"after a finish"}`,
	`not json`,
	``,
}

// TestOutputScannerAcceptsOnlyValidOutput reads a stream line by line with
// Scan and, where the shortcut applies, with Next on the rest of the
// stream. Every line either accepts must be an sh_output event that
// schema.Decode reads with the same header, and ScanEventHeader must agree.
func TestOutputScannerAcceptsOnlyValidOutput(t *testing.T) {
	checkOutputScanner(t, outputStream)
}

func FuzzOutputScanner(f *testing.F) {
	f.Add(strings.Join(outputStream, "\n"))
	f.Add(strings.Join(outputStream[1:4], "\r\n"))
	f.Fuzz(func(t *testing.T, stream string) {
		checkOutputScanner(t, strings.Split(stream, "\n"))
	})
}

func checkOutputScanner(t *testing.T, lines []string) {
	t.Helper()
	buf := []byte(strings.Join(lines, "\n") + "\n")
	var byLine, byBuf OutputScanner
	accepted, shortcuts := 0, 0
	check := func(i int, line string, h EventHeader) {
		t.Helper()
		if want, ok := ScanEventHeader([]byte(line), ""); !ok || h != want {
			t.Errorf("line %d %q: accepted as %+v; ScanEventHeader = %+v, %v", i, line, h, want, ok)
		}
		ev, err := schema.Decode([]byte(line))
		out, isOutput := ev.(*schema.ShOutput)
		if err != nil || !isOutput {
			t.Fatalf("line %d %q: accepted as %+v, but schema.Decode = %T, %v", i, line, h, ev, err)
		}
		if h.Type != "sh_output" || h.JobID != out.JobID || h.AtMs != out.AtMs {
			t.Errorf("line %d %q: accepted as %+v, but schema.Decode reads job %q at %d", i, line, h, out.JobID, out.AtMs)
		}
	}
	for i, line := range lines {
		if h, ok := byLine.Scan([]byte(line)); ok {
			accepted++
			check(i, line, h)
		}
		if n, ok := byBuf.Next(buf); ok {
			shortcuts++
			h := byBuf.Last()
			if n != len(line) {
				t.Errorf("line %d %q: Next took %d bytes, want %d", i, line, n, len(line))
			}
			if byBuf.Job() != h.JobID || byBuf.AtMs() != h.AtMs {
				t.Errorf("line %d: Job, AtMs = %q, %d; want them as in Last, %+v", i, byBuf.Job(), byBuf.AtMs(), h)
			}
			check(i, line, h)
		} else {
			byBuf.Scan([]byte(line))
		}
		buf = buf[len(line)+1:]
	}
	if len(lines) == len(outputStream) && (shortcuts == 0 || accepted < 5) {
		t.Errorf("accepted %d lines, %d of them by the shortcut; want at least 5 and some by the shortcut", accepted, shortcuts)
	}
}

// TestScanEventHeaderDefersToFullDecode lists lines whose header only a
// full decode reads as the event's readers do, so the scanner must reject
// them rather than read them its own way.
func TestScanEventHeaderDefersToFullDecode(t *testing.T) {
	for _, line := range []string{
		`{"type":"log","job_id":"a","Job_ID":"b"}`,
		`{"type":"sh_output","TYPE":"log"}`,
		`{"type":"log","at_ms":1,"AT_MS":2}`,
		"{\"type\":\"log\",\"job_id\":\"t\xffst\"}",
		"{\"at_ms\":1,\"type\":\"sh_output\",\"job_id\":\"t\xffst\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"x\"}",
	} {
		if h, ok := ScanEventHeader([]byte(line), ""); ok {
			t.Errorf("ScanEventHeader(%q) = %+v, want it rejected", line, h)
		}
		h := HeaderOf(line)
		var want struct {
			Type  string `json:"type"`
			JobID string `json:"job_id"`
			AtMs  int64  `json:"at_ms"`
		}
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatal(err)
		}
		if h.Type != want.Type || h.JobID != want.JobID || h.AtMs != want.AtMs {
			t.Errorf("HeaderOf(%q) = %+v, want %+v as encoding/json reads it", line, h, want)
		}
	}
}
