package queue

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// TestIngestSkipsInvalidLinesInBatch sends invalid lines between
// output lines of one batch: they are not stored, the valid ones around
// them keep consecutive seqs and their exact text, and the run's result
// still follows the stream.
func TestIngestSkipsInvalidLinesInBatch(t *testing.T) {
	out := func(n int) string {
		return fmt.Sprintf(`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"line %d"}`, n)
	}
	valid := slices.Concat(happyEvents[:3], []string{out(1), out(2)})
	invalid := []string{
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","line":"unterminated}`,
		`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","line":"x"} trailing`,
		`{"at_ms":1764850000003,"type":"sh_outputs","job_id":"test","line":"unknown type"}`,
		`[1, 2]`,
	}
	tail := slices.Concat([]string{out(3), out(4)}, happyEvents[4:], []string{runSuccess})
	lines := slices.Concat(valid, invalid, tail)
	want := slices.Concat(valid, tail)

	h := newHarness(t, fakeRunner(t))
	h.start()
	r := h.waitFinal(h.push("main", events("", lines...)).RunID)

	if r.State != store.RunComplete {
		t.Errorf("run = %s / %q (%s), want complete", r.State, r.FailureKind, r.Error)
	}
	if r.LastSeq != int64(len(want)) {
		t.Errorf("last_seq = %d, want %d", r.LastSeq, len(want))
	}
	evs, err := store.EventsAfter(t.Context(), h.st.DB, r.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(want) {
		t.Fatalf("stored %d events, want %d", len(evs), len(want))
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.Data != want[i] {
			t.Errorf("event %d = seq %d %s, want seq %d %s", i, ev.Seq, ev.Data, i+1, want[i])
		}
	}
	if evs[5].Type != "sh_output" || evs[5].JobName != "test" || evs[5].AtMs != 1764850000003 {
		t.Errorf("output event after the invalid lines = %+v, want sh_output of job test at 1764850000003", evs[5])
	}
	test := "test"
	got, err := h.st.PageRunEvents(t.Context(), store.EventPage{RunID: r.ID, Job: &test, After: 4, Limit: 3})
	if err != nil || len(got) != 3 || got[0].Seq != 5 || got[2].Seq != 7 {
		t.Errorf("job test's events after 4 = %+v, %v; want seqs 5 to 7", got, err)
	}
}

// TestIngestLongLines sends a 300 KiB output line, longer than one read,
// which is stored whole, and a line over the 4 MiB limit, which is skipped
// without losing the events after it.
func TestIngestLongLines(t *testing.T) {
	tail := `printf '{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"'
head -c 300000 /dev/zero | tr '\0' a
printf '"}\n{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"'
head -c 5000000 /dev/zero | tr '\0' b
printf '"}\n'
cat <<'EV'
` + strings.Join(append(happyEvents[3:], runSuccess), "\n") + `
EV`

	h := newHarness(t, fakeRunner(t))
	h.start()
	r := h.waitFinal(h.push("main", events(tail, happyEvents[:3]...)).RunID)

	if r.State != store.RunComplete {
		t.Errorf("run = %s / %q (%s), want complete", r.State, r.FailureKind, r.Error)
	}
	if r.LastSeq != 8 {
		t.Errorf("last_seq = %d, want 8: three events, the long line and four more", r.LastSeq)
	}
	evs, err := store.EventsAfter(t.Context(), h.st.DB, r.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 8 {
		t.Fatalf("stored %d events, want 8", len(evs))
	}
	if got := len(evs[3].Data); got != 300000+len(`{"at_ms":1764850000003,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":""}`) {
		t.Errorf("the long line is stored with %d bytes, want all of it", got)
	}
	if !strings.HasSuffix(evs[3].Data, `aaa"}`) || evs[4].Data != happyEvents[3] || evs[7].Data != runSuccess {
		t.Errorf("events 4, 5 and 8 = %.40q, %q, %q; want the long line, then the output after the skipped line", evs[3].Data, evs[4].Data, evs[7].Data)
	}
}

// TestIngestPublishesWhatItStores compares the events handed to live
// viewers with the stored ones, field by field, for a stream that mixes
// output runs with other events.
func TestIngestPublishesWhatItStores(t *testing.T) {
	out := func(job string, at, n int) string {
		return fmt.Sprintf(`{"at_ms":%d,"type":"sh_output","job_id":%q,"seq":1,"stream":"stdout","line":"line %d"}`, 1764850000000+at, job, n)
	}
	lines := slices.Concat(happyEvents[:3], []string{out("test", 3, 1), out("test", 3, 2), out("test", 4, 3)}, happyEvents[4:], []string{runSuccess})

	h := newHarness(t, fakeRunner(t))
	h.start()
	r := h.waitFinal(h.push("main", events("", lines...)).RunID)
	if r.State != store.RunComplete {
		t.Fatalf("run = %s / %q (%s), want complete", r.State, r.FailureKind, r.Error)
	}
	stored, err := store.EventsAfter(t.Context(), h.st.DB, r.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	h.rec.mu.Lock()
	live := slices.Clone(h.rec.liveEvents[r.ID])
	h.rec.mu.Unlock()
	if len(live) != len(lines) || len(stored) != len(lines) {
		t.Fatalf("published %d and stored %d events, want %d of each", len(live), len(stored), len(lines))
	}
	for i := range live {
		if live[i] != stored[i] {
			t.Errorf("published event %d = %+v, want it as stored: %+v", i, live[i], stored[i])
		}
	}
	if live[4].AtMs != 1764850000003 || live[5].AtMs != 1764850000004 {
		t.Errorf("output events' at_ms = %d, %d; want each its own", live[4].AtMs, live[5].AtMs)
	}
}

// TestIngestSkipsPublishingUnwatchedRuns stores every event of a run that
// has no viewers without splitting them into events for the live sink.
func TestIngestSkipsPublishingUnwatchedRuns(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	h.rec.unwatched = true
	h.start()
	r := h.waitFinal(h.push("main", events("", slices.Concat(happyEvents, []string{runSuccess})...)).RunID)
	if r.State != store.RunComplete || r.LastSeq != int64(len(happyEvents)+1) {
		t.Fatalf("run = %s with last_seq %d, want complete with %d", r.State, r.LastSeq, len(happyEvents)+1)
	}
	h.rec.mu.Lock()
	published := len(h.rec.liveEvents[r.ID])
	h.rec.mu.Unlock()
	if published != 0 {
		t.Errorf("published %d events of an unwatched run, want none", published)
	}
}

// TestIngestKeepsEveryLineOfALongStream runs a step that prints 300,000
// distinct lines, many read blocks' worth, and reads every stored event
// back: read blocks are reused once stored, so a block reused too early
// would show as wrong text. It runs once with a viewer and once without.
func TestIngestKeepsEveryLineOfALongStream(t *testing.T) {
	const n = 300_000
	outputLine := func(i int) string {
		stream := "stdout"
		if i%7 == 0 {
			stream = "stderr"
		}
		return fmt.Sprintf(`{"at_ms":%d,"type":"sh_output","job_id":"test","seq":1,"stream":"%s","line":"line %d"}`, 1764850000000+i/1000, stream, i)
	}
	script := "cat <<'EV'\n" + strings.Join(happyEvents[:3], "\n") + "\nEV\n" +
		`awk 'BEGIN { for (i = 1; i <= ` + fmt.Sprint(n) + `; i++) { s = (i % 7 == 0) ? "stderr" : "stdout"; ` +
		`printf "{\"at_ms\":%.0f,\"type\":\"sh_output\",\"job_id\":\"test\",\"seq\":1,\"stream\":\"%s\",\"line\":\"line %d\"}\n", 1764850000000 + int(i / 1000), s, i } }'` + "\n" +
		"cat <<'EV'\n" + strings.Join(slices.Concat(happyEvents[4:], []string{runSuccess}), "\n") + "\nEV\n"

	for _, watched := range []bool{true, false} {
		t.Run(fmt.Sprintf("watched %v", watched), func(t *testing.T) {
			h := newHarness(t, fakeRunner(t))
			h.rec.unwatched = !watched
			h.start()
			r := h.waitFinal(h.push("main", map[string]string{workspace.PipelineFile: script}).RunID)
			if r.State != store.RunComplete || r.LastSeq != n+6 {
				t.Fatalf("run = %s with last_seq %d (%s), want complete with %d", r.State, r.LastSeq, r.Error, n+6)
			}
			for after := int64(3); after < n+3; {
				evs, err := store.EventsAfter(t.Context(), h.st.DB, r.ID, after, 50_000)
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					if ev.Seq > n+3 {
						break
					}
					if want := outputLine(int(ev.Seq - 3)); ev.Data != want || ev.JobName != "test" || ev.Type != "sh_output" {
						t.Fatalf("event %d = %s %s %s, want sh_output test %s", ev.Seq, ev.Type, ev.JobName, ev.Data, want)
					}
					after = ev.Seq
				}
			}
			h.rec.mu.Lock()
			published := len(h.rec.liveEvents[r.ID])
			h.rec.mu.Unlock()
			if watched && published != n+6 {
				t.Errorf("published %d events to the viewer, want %d", published, n+6)
			}
			if !watched && published != 0 {
				t.Errorf("published %d events of an unwatched run, want none", published)
			}
		})
	}
}

// TestIngestWarningsAreBounded feeds the reader and writer of ingestion
// 30 invalid lines and a partial last line: both goroutines warn, and
// together they log at most maxWarnings warnings while every invalid line
// is counted.
func TestIngestWarningsAreBounded(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	var logs lockedBuffer
	g := newIngester(h.q, &store.Run{ID: 1}, slog.New(slog.NewTextHandler(&logs, nil)))

	pr, pw := io.Pipe()
	lines := make(chan *lineBatch, readAhead)
	written := make(chan struct{})
	go g.readLines(pr, lines)
	go func() {
		g.writeLoop(t.Context(), lines)
		close(written)
	}()
	for i := range 30 {
		if _, err := fmt.Fprintf(pw, "not json %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pw.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	<-written

	if g.invalid != 30 {
		t.Errorf("counted %d invalid lines, want 30", g.invalid)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n == 0 || n > maxWarnings {
		t.Errorf("logged %d warnings, want 1 to %d:\n%s", n, maxWarnings, logs.String())
	}
}

// lockedBuffer is a bytes.Buffer that goroutines may write at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
