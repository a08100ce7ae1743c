package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/runner/mask"
	"github.com/octavo-ci/octavo/schema"
	"github.com/octavo-ci/octavo/schema/schematest"
)

func fixedClock() time.Time { return time.UnixMilli(1764850000000) }

func TestSinkWritesOneValidEventPerLine(t *testing.T) {
	sch, err := schematest.Compile("events.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mask.New(map[string]string{"TOKEN": "hunter22"})
	var buf bytes.Buffer
	sink := NewSink(NewJSONWriter(&buf), m, fixedClock)

	evs := []any{
		&schema.RunStarted{},
		&schema.JobStarted{JobID: "a"},
		&schema.ShStarted{JobID: "a", Seq: 1, Cmd: "login hunter22"},
		&schema.ShOutput{JobID: "a", Seq: 1, Stream: schema.Stdout, Line: "<b>hunter22</b> & more"},
		&schema.ShFinished{JobID: "a", Seq: 1, ExitCode: -1, Error: "hunter22 rejected"},
		&schema.Log{JobID: "a", Level: schema.LevelInfo, Message: "token hunter22"},
		&schema.JobFinished{JobID: "a", Outcome: schema.JobSucceeded, Outputs: map[string]any{"k": []any{"hunter22"}, "hunter22": 1}},
		&schema.RunFinished{Outcome: schema.RunSuccess},
	}
	for _, ev := range evs {
		if err := sink.Emit(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}

	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != len(evs) {
		t.Fatalf("got %d lines, want %d", len(lines), len(evs))
	}
	for i, line := range lines {
		if err := schematest.ValidateJSON(sch, line); err != nil {
			t.Errorf("line %d: %v", i+1, err)
		}
		if bytes.Contains(line, []byte("hunter22")) {
			t.Errorf("line %d leaks the secret: %s", i+1, line)
		}
		if !bytes.HasPrefix(line, []byte(`{"at_ms":1764850000000,"type":"`)) {
			t.Errorf("line %d does not start with the envelope: %s", i+1, line)
		}
	}
	if want := `"line":"<b>***TOKEN***</b> & more"`; !bytes.Contains(lines[3], []byte(want)) {
		t.Errorf("output line %s, want %s without HTML escaping", lines[3], want)
	}
}

func TestSinkIsSafeForConcurrentUse(t *testing.T) {
	var buf bytes.Buffer
	sink := NewSink(NewJSONWriter(&buf), nil, nil)
	const writers, each = 8, 500

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_ = sink.Emit(&schema.ShOutput{JobID: "j" + strconv.Itoa(w), Seq: 1, Stream: schema.Stdout, Line: strconv.Itoa(i)})
			}
		})
	}
	wg.Wait()
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}

	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		var ev schema.ShOutput
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is not one event: %v: %s", n+1, err, sc.Bytes())
		}
		n++
	}
	if n != writers*each {
		t.Errorf("got %d events, want %d", n, writers*each)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSinkKeepsFirstWriteError(t *testing.T) {
	sink := NewSink(NewJSONWriter(failingWriter{}), nil, nil)
	_ = sink.Emit(&schema.RunStarted{})

	err := sink.Flush()
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Fatalf("Flush error %v, want disk full", err)
	}
	if err := sink.Emit(&schema.RunFinished{Outcome: schema.RunSuccess}); err == nil {
		t.Errorf("Emit after a failed flush returned nil, want the first error")
	}
	if sink.Err() == nil {
		t.Errorf("Err returned nil after a failure")
	}
}

func TestSinkRejectsUnknownEventType(t *testing.T) {
	sink := NewSink(NewJSONWriter(io.Discard), nil, nil)
	if err := sink.Emit(struct{}{}); err == nil {
		t.Errorf("Emit(struct{}{}) returned nil, want an error")
	}
}

// BenchmarkSinkShOutput measures events per second for output lines of a
// typical length through masking and JSON encoding into a buffer.
func BenchmarkSinkShOutput(b *testing.B) {
	m, _ := mask.New(map[string]string{"TOKEN": "0123456789abcdef0123456789abcdef", "PASSWORD": "correct horse battery staple"})
	sink := NewSink(NewJSONWriter(io.Discard), m, nil)
	line := "=== RUN   TestRunSkipsTransitiveDependentsOfFailedJob/with_a_long_subtest_name (0.01s)"
	b.ReportAllocs()
	for b.Loop() {
		_ = sink.Emit(&schema.ShOutput{JobID: "test", Seq: 3, Stream: schema.Stdout, Line: line})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
