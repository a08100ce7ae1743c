package queue

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// outputLine returns an sh_output line in the runner's member order.
func outputLine(job string, atMs int64, stream, text string) string {
	return fmt.Sprintf(`{"at_ms":%d,"type":"sh_output","job_id":%q,"seq":1,"stream":%q,"line":%q}`, atMs, job, stream, text)
}

// shellQuote quotes s for the fake runner's shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printLines returns shell code that prints each line followed by ending,
// which printf reads as a format, so `\r\n` is a carriage return and a
// newline. A NUL byte, which a shell argument cannot contain, goes into
// the format as an octal escape.
func printLines(ending string, lines ...string) string {
	var b strings.Builder
	for _, line := range lines {
		parts := strings.Split(line, "\x00")
		quoted := make([]string, len(parts))
		for i, p := range parts {
			quoted[i] = shellQuote(p)
		}
		format := strings.Repeat(`%s\000`, len(parts)-1) + "%s" + ending
		fmt.Fprintf(&b, "printf '%s' %s\n", format, strings.Join(quoted, " "))
	}
	return b.String()
}

// ingested is a finished run with its events as stored and as published
// to the live sink.
type ingested struct {
	run       *store.Run
	stored    []store.RunEvent
	published []store.RunEvent
}

// ingestScript runs script as the runner's pipeline until the run ends and
// returns what ingestion stored and published.
func ingestScript(t *testing.T, h *harness, script string) ingested {
	t.Helper()
	r := h.waitFinal(h.push("main", map[string]string{workspace.PipelineFile: script}).RunID)
	stored, err := store.EventsAfter(t.Context(), h.st.DB, r.ID, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	h.rec.mu.Lock()
	published := slices.Clone(h.rec.liveEvents[r.ID])
	h.rec.mu.Unlock()
	return ingested{run: r, stored: stored, published: published}
}

// checkEvents compares events with the lines that should have been
// stored: consecutive seqs from 1, each line byte for byte, and the type,
// job and at_ms that encoding/json reads from the line, as schema.Decode
// does.
func checkEvents(t *testing.T, source string, events []store.RunEvent, want []string) {
	t.Helper()
	if len(events) != len(want) {
		t.Errorf("%s %d events, want %d", source, len(events), len(want))
	}
	for i := range min(len(events), len(want)) {
		ev := events[i]
		if ev.Seq != int64(i+1) {
			t.Errorf("%s event %d has seq %d, want %d", source, i+1, ev.Seq, i+1)
		}
		if ev.Data != want[i] {
			t.Errorf("%s event %d = %.200q, want %.200q", source, i+1, ev.Data, want[i])
			continue
		}
		var head struct {
			Type  string `json:"type"`
			JobID string `json:"job_id"`
			AtMs  int64  `json:"at_ms"`
		}
		if err := json.Unmarshal([]byte(want[i]), &head); err != nil {
			t.Fatalf("expected line %d is not an event: %v", i+1, err)
		}
		if ev.Type != head.Type || ev.JobName != head.JobID || ev.AtMs != head.AtMs {
			t.Errorf("%s event %d = type %q job %q at_ms %d, want %q %q %d", source, i+1, ev.Type, ev.JobName, ev.AtMs, head.Type, head.JobID, head.AtMs)
		}
	}
}

// checkIngested checks that a run completed and that both its stored and
// its published events are want.
func checkIngested(t *testing.T, got ingested, want []string) {
	t.Helper()
	if got.run.State != store.RunComplete {
		t.Errorf("run = %s / %q (%s), want complete", got.run.State, got.run.FailureKind, got.run.Error)
	}
	if got.run.LastSeq != int64(len(want)) {
		t.Errorf("last_seq = %d, want %d", got.run.LastSeq, len(want))
	}
	checkEvents(t, "stored", got.stored, want)
	checkEvents(t, "published", got.published, want)
}

// around returns the happy run's events with middle in place of its one
// output line, ending in run_finished.
func around(middle ...string) []string {
	return slices.Concat(happyEvents[:3], middle, happyEvents[4:], []string{runSuccess})
}

// TestIngestEdgeLineEndings sends output and other lines ending in
// "\r\n", "\n" and "\r\r\n", alternating so that an output line after a
// "\r\n" one repeats the remembered header. The carriage returns are line
// endings, so no stored event contains one.
func TestIngestEdgeLineEndings(t *testing.T) {
	var middle []string
	for i := range 12 {
		middle = append(middle, outputLine("test", 1764850000003, "stdout", fmt.Sprintf("line %d", i)))
	}
	want := around(middle...)

	var script strings.Builder
	for i, line := range want {
		script.WriteString(printLines([]string{`\r\n`, `\n`, `\n`, `\r\r\n`, `\r\n`}[i%5], line))
	}

	h := newHarness(t, fakeRunner(t))
	h.start()
	checkIngested(t, ingestScript(t, h, script.String()), want)
}

// TestIngestEdgeLinesSplitAcrossReads writes lines in pieces with pauses
// between them, so that reads end inside a line. The cuts lie in the
// header of an output line that repeats the remembered one, inside its
// text and inside an escape. Others lie between the closing brace and the
// newline, and between a carriage return and its newline.
func TestIngestEdgeLinesSplitAcrossReads(t *testing.T) {
	out := func(text string) string { return outputLine("test", 1764850000003, "stdout", text) }
	escaped := `{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"caf\u00e9 \"q\""}`
	middle := []string{out("first"), out("second"), out("third"), escaped, out("fifth"), out("sixth"), out("seventh")}
	want := around(middle...)

	// Each piece is printed by its own printf after a pause.
	pieces := []string{
		strings.Join(happyEvents[:3], "\n") + "\n" + middle[0] + "\n" + middle[1][:20],
		middle[1][20:40],
		middle[1][40:] + "\n" + middle[2][:len(middle[2])-10],
		middle[2][len(middle[2])-10:] + "\n" + escaped[:len(escaped)-12],
		escaped[len(escaped)-12:] + "\n" + middle[4],
		"\n" + middle[5] + "\r",
		"\n" + middle[6][:1],
		middle[6][1:] + "\n" + strings.Join(want[len(happyEvents[:3])+len(middle):], "\n") + "\n",
	}
	var script strings.Builder
	for i, p := range pieces {
		if i > 0 {
			script.WriteString("sleep 0.05\n")
		}
		fmt.Fprintf(&script, "printf '%%s' %s\n", shellQuote(p))
	}
	// The sixth piece ends in a carriage return, which printf's %s
	// prints as given.
	if strings.Join(pieces, "") != strings.Join(want[:8], "\n")+"\n"+middle[5]+"\r\n"+strings.Join(want[9:], "\n")+"\n" {
		t.Fatal("the pieces do not join to the expected stream")
	}

	h := newHarness(t, fakeRunner(t))
	h.start()
	checkIngested(t, ingestScript(t, h, script.String()), want)
}

// TestIngestEdgeLongLineSizes sends output lines around the read block's
// size and at the event line limit. Each is stored whole, except the
// line one byte over the limit, which is skipped without losing the
// events around it.
func TestIngestEdgeLongLineSizes(t *testing.T) {
	head := `{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"`
	// sized returns shell code printing an output line of size bytes
	// without its newline, and the line itself.
	sized := func(size int, fill byte) (string, string) {
		n := size - len(head) - 2
		code := fmt.Sprintf("printf '%%s' %s\nhead -c %d /dev/zero | tr '\\0' %c\nprintf '\"}\\n'\n", shellQuote(head), n, fill)
		return code, head + strings.Repeat(string(fill), n) + `"}`
	}

	var script strings.Builder
	script.WriteString(printLines(`\n`, happyEvents[:3]...))
	var middle []string
	for i, size := range []int{readBlock - 2, readBlock - 1, readBlock, readBlock + 1, 2*readBlock + 7, maxEventLine - 1, maxEventLine} {
		code, line := sized(size, byte('a'+i))
		script.WriteString(code)
		middle = append(middle, line)
		script.WriteString(printLines(`\n`, outputLine("test", 1764850000003, "stdout", fmt.Sprintf("after %d", size))))
		middle = append(middle, outputLine("test", 1764850000003, "stdout", fmt.Sprintf("after %d", size)))
	}
	code, _ := sized(maxEventLine+1, 'z')
	script.WriteString(code)
	script.WriteString(printLines(`\n`, slices.Concat(happyEvents[4:], []string{runSuccess})...))

	h := newHarness(t, fakeRunner(t))
	h.start()
	checkIngested(t, ingestScript(t, h, script.String()), around(middle...))
}

// TestIngestEdgeHeaderValues sends events whose headers vary on every
// line: the job and stream switch, job ids carry escapes, at_ms takes its
// extreme values, and the text has escapes, NUL as \u0000 and bytes that
// are not UTF-8. Lines that are no valid JSON are skipped: a number with
// a leading zero, an at_ms past int64, a raw control character in a line
// that repeats the remembered header, a raw NUL.
func TestIngestEdgeHeaderValues(t *testing.T) {
	valid := []string{
		outputLine("test", 1764850000003, "stdout", "one"),
		outputLine("lint", 1764850000003, "stderr", "two"),
		outputLine("test", 1764850000003, "stderr", "three"),
		outputLine("lint", 1764850000003, "stdout", "four"),
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"te\u0073t","seq":1,"stream":"stdout","line":"escaped job"}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"a\"b\\c","seq":1,"stream":"stdout","line":"quote in job"}`,
		`{"at_ms":1764850000003,"type":"log","job_id":"te\u0073t","message":"escaped job in a log"}`,
		outputLine("test", 9223372036854775807, "stdout", "largest at_ms"),
		outputLine("test", -9223372036854775808, "stdout", "smallest at_ms"),
		`{"at_ms":-0,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"minus zero"}`,
		outputLine("test", 0, "stdout", "zero"),
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"nul \u0000 and \ud83d\ude00 and \ud800"}`,
		"{\"at_ms\":1764850000003,\"type\":\"sh_output\",\"job_id\":\"test\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"latin-1 caf\xe9 and \xff\xfe\"}",
		outputLine("test", 1764850000003, "stdout", "back to normal"),
	}
	remembered := outputLine("test", 1764850000003, "stdout", "")
	remembered = remembered[:len(remembered)-2]
	invalid := []string{
		`{"at_ms":01764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"leading zero"}`,
		`{"at_ms":9223372036854775808,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"past int64"}`,
		`{"at_ms":-9223372036854775809,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"below int64"}`,
		`{"at_ms":12345678901234567890123,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"23 digits"}`,
		remembered + "raw\ttab\"}",
		remembered + "raw\x1fcontrol\"}",
		remembered + "raw\x00nul\"}",
		remembered + "unterminated}",
		remembered + `bad \x escape"}`,
		remembered + `short \u12 escape"}`,
	}
	var middle []string
	for i, line := range valid {
		middle = append(middle, line)
		// Each invalid line follows an output line of job test, whose
		// header it repeats.
		if i < len(invalid) {
			middle = append(middle, outputLine("test", 1764850000003, "stdout", fmt.Sprintf("before invalid %d", i)), invalid[i])
		}
	}
	want := around(slices.DeleteFunc(slices.Clone(middle), func(s string) bool { return slices.Contains(invalid, s) })...)

	h := newHarness(t, fakeRunner(t))
	h.start()
	got := ingestScript(t, h, printLines(`\n`, around(middle...)...))
	checkIngested(t, got, want)
}

// TestIngestEdgeTinyWrites writes a stream one byte per write, so that
// nearly every read ends inside a line.
func TestIngestEdgeTinyWrites(t *testing.T) {
	var middle []string
	for i := range 200 {
		job := "test"
		if i%3 == 0 {
			job = "lint"
		}
		middle = append(middle, outputLine(job, 1764850000003+int64(i/50), "stdout", fmt.Sprintf("tiny line %d", i)))
	}
	want := around(middle...)
	// awk prints the stream one byte at a time and flushes each byte.
	awk := "awk '{ s = $0 \"\\n\"; for (i = 1; i <= length(s); i++) { printf \"%s\", substr(s, i, 1); fflush() } }' <<'EV'\n" +
		strings.Join(want, "\n") + "\nEV\n"

	h := newHarness(t, fakeRunner(t))
	h.start()
	checkIngested(t, ingestScript(t, h, awk), want)
}

// TestIngestEdgeRepeatedMembers sends events with a type, job_id or at_ms
// member given twice under the same name. encoding/json keeps the last,
// and so must ingestion, whether the line is an output line or not.
func TestIngestEdgeRepeatedMembers(t *testing.T) {
	want := around(
		`{"at_ms":1764850000003,"type":"log","job_id":"test","seq":1,"stream":"stdout","line":"log then output","type":"sh_output"}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","message":"output then log","type":"log"}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"lint","seq":1,"stream":"stdout","line":"lint then test","job_id":"test"}`,
		`{"at_ms":1,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"two times","at_ms":1764850000009}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"first text","line":"second text"}`,
	)

	h := newHarness(t, fakeRunner(t))
	h.start()
	checkIngested(t, ingestScript(t, h, printLines(`\n`, want...)), want)
}

// TestIngestEdgeStreamEnds checks the run's result when the stream ends
// in a way the runner never writes: run_finished without its newline, an
// over-long last line, or blank and whitespace lines after run_finished.
func TestIngestEdgeStreamEnds(t *testing.T) {
	tests := []struct {
		name   string
		script string
		state  store.RunState
		kind   store.FailureKind
		stored int64
	}{
		{
			"run_finished without a newline is no event",
			printLines(`\n`, happyEvents...) + fmt.Sprintf("printf '%%s' %s\n", shellQuote(runSuccess)),
			store.RunFailed, store.FailureProcessCrashed, 6,
		},
		{
			"an over-long last line without a newline is dropped",
			printLines(`\n`, append(slices.Clone(happyEvents), runSuccess)...) + "head -c 5000000 /dev/zero | tr '\\0' x\n",
			store.RunComplete, store.FailureNone, 7,
		},
		{
			"blank lines after run_finished are skipped",
			printLines(`\n`, append(slices.Clone(happyEvents), runSuccess)...) + "printf '\\n \\n\\t\\r\\n\\n'\n",
			store.RunComplete, store.FailureNone, 7,
		},
		{
			"an unknown event after run_finished is skipped",
			printLines(`\n`, append(slices.Clone(happyEvents), runSuccess, `{"at_ms":1764850000007,"type":"run_archived"}`)...),
			store.RunComplete, store.FailureNone, 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fakeRunner(t))
			h.start()
			got := ingestScript(t, h, tt.script)
			if got.run.State != tt.state || got.run.FailureKind != tt.kind {
				t.Errorf("run = %s / %q (%s), want %s / %q", got.run.State, got.run.FailureKind, got.run.Error, tt.state, tt.kind)
			}
			if got.run.LastSeq != tt.stored {
				t.Errorf("last_seq = %d, want %d", got.run.LastSeq, tt.stored)
			}
			if int64(len(got.stored)) != tt.stored {
				t.Errorf("stored %d events, want %d", len(got.stored), tt.stored)
			}
		})
	}
}

// TestIngestEdgeWhitespaceInLines sends events with JSON whitespace
// before, inside and after the object, including carriage returns that
// are not line endings. Such lines are valid events and are stored with
// their whitespace, except a carriage return right before the newline.
func TestIngestEdgeWhitespaceInLines(t *testing.T) {
	out := func(text string) string { return outputLine("test", 1764850000003, "stdout", text) }
	middle := []string{
		out("plain"),
		" " + out("leading space"),
		out("trailing space") + " ",
		out("trailing tab") + "\t",
		out("plain after whitespace"),
		"{\"at_ms\":1764850000003,\r\"type\":\"sh_output\",\"job_id\":\"test\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"carriage return inside\"}",
		"{ \"type\" : \"sh_output\" ,\t\"job_id\" : \"test\" , \"line\" : \"spaced\" , \"at_ms\" : 1764850000004 }",
		out("plain at the end"),
	}
	want := around(middle...)

	var script strings.Builder
	for i, line := range want {
		ending := `\n`
		if i == 5 {
			ending = ` \r\n`
		}
		script.WriteString(printLines(ending, line))
	}
	// The line printed with " \r\n" keeps the space before the carriage
	// return.
	want[5] += " "

	h := newHarness(t, fakeRunner(t))
	h.start()
	checkIngested(t, ingestScript(t, h, script.String()), want)
}
