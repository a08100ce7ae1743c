package events

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/runner/mask"
	"github.com/octavo-ci/octavo/schema"
)

// eventRecorder is a Writer without WriteOutput, like the terminal view.
type eventRecorder struct{ events []any }

func (r *eventRecorder) WriteEvent(ev any) error { r.events = append(r.events, ev); return nil }
func (r *eventRecorder) Flush() error            { return nil }

// outputLines returns lines that together cross several write buffers,
// some of them with a secret, an escape or invalid UTF-8.
func outputLines(n int) [][]byte {
	lines := make([][]byte, n)
	for i := range lines {
		switch i % 5 {
		case 0:
			lines[i] = []byte("line " + strconv.Itoa(i) + " with hunter22 inside")
		case 1:
			lines[i] = []byte("tab\there \"quoted\" \u2028 " + strings.Repeat("x", i%300))
		case 2:
			lines[i] = []byte("invalid \xff byte")
		default:
			lines[i] = []byte(strconv.Itoa(i))
		}
	}
	return lines
}

func TestEmitOutputWritesWhatEmitWrites(t *testing.T) {
	m, _ := mask.New(map[string]string{"TOKEN": "hunter22"})
	const n = 40000 // about 1.5 MB of events, several write buffers

	var batched bytes.Buffer
	sink := NewSink(NewJSONWriter(&batched), m, fixedClock)
	lines := outputLines(n)
	for start := 0; start < n; start += 1000 {
		if err := sink.EmitOutput("build", 2, schema.Stderr, lines[start:start+1000]); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}

	var single bytes.Buffer
	sink = NewSink(NewJSONWriter(&single), m, fixedClock)
	for _, line := range outputLines(n) {
		if err := sink.Emit(&schema.ShOutput{JobID: "build", Seq: 2, Stream: schema.Stderr, Line: string(line)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}

	if !bytes.Equal(batched.Bytes(), single.Bytes()) {
		t.Fatalf("EmitOutput wrote %d bytes that differ from the %d bytes Emit wrote", batched.Len(), single.Len())
	}
	if bytes.Contains(batched.Bytes(), []byte("hunter22")) {
		t.Errorf("EmitOutput leaked the secret")
	}
	if got := bytes.Count(batched.Bytes(), []byte("\n")); got != n {
		t.Errorf("got %d events, want %d", got, n)
	}
}

func TestEmitOutputBuildsEventsForOtherWriters(t *testing.T) {
	m, _ := mask.New(map[string]string{"TOKEN": "hunter22"})
	var rec eventRecorder
	sink := NewSink(&rec, m, fixedClock)

	if err := sink.EmitOutput("a", 1, schema.Stdout, [][]byte{[]byte("one"), []byte("hunter22")}); err != nil {
		t.Fatal(err)
	}

	want := []schema.ShOutput{
		{Envelope: schema.Envelope{AtMs: 1764850000000, Type: schema.TypeShOutput}, JobID: "a", Seq: 1, Stream: schema.Stdout, Line: "one"},
		{Envelope: schema.Envelope{AtMs: 1764850000000, Type: schema.TypeShOutput}, JobID: "a", Seq: 1, Stream: schema.Stdout, Line: "***TOKEN***"},
	}
	if len(rec.events) != len(want) {
		t.Fatalf("got %d events, want %d", len(rec.events), len(want))
	}
	for i, ev := range rec.events {
		if got, ok := ev.(*schema.ShOutput); !ok || *got != want[i] {
			t.Errorf("event %d is %+v, want %+v", i, ev, want[i])
		}
	}
}

// failAfter accepts limit bytes and then fails every write.
type failAfter struct {
	limit, written int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.written+len(p) > f.limit {
		return 0, errors.New("disk full")
	}
	f.written += len(p)
	return len(p), nil
}

func TestEmitOutputReportsAFailedBackgroundWrite(t *testing.T) {
	sink := NewSink(NewJSONWriter(&failAfter{limit: jsonBufferSize}), nil, nil)
	lines := outputLines(1000)

	var err error
	// Each batch is about 40 KB, so a write fails within a few batches;
	// the bound keeps a sink that loses errors from looping forever.
	for range 100 {
		if err = sink.EmitOutput("a", 1, schema.Stdout, lines); err != nil {
			break
		}
	}
	if err == nil {
		err = sink.Flush()
	}
	if err == nil || !strings.Contains(err.Error(), "write sh_output event: disk full") {
		t.Fatalf("error %v, want write sh_output event: disk full", err)
	}
	if got := sink.Flush(); got == nil {
		t.Errorf("Flush after a failed write returned nil, want the first error")
	}
}

// BenchmarkSinkEmitOutput measures output lines per second when a step's
// read hands over 1,000 lines at once, through masking and encoding.
func BenchmarkSinkEmitOutput(b *testing.B) {
	m, _ := mask.New(map[string]string{"TOKEN": "0123456789abcdef0123456789abcdef", "PASSWORD": "correct horse battery staple"})
	sink := NewSink(NewJSONWriter(io.Discard), m, nil)
	line := []byte("=== RUN   TestRunSkipsTransitiveDependentsOfFailedJob/with_a_long_subtest_name (0.01s)")
	batch := make([][]byte, 1000)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i] = line
		}
		_ = sink.EmitOutput("test", 3, schema.Stdout, batch)
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}
