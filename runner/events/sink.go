// Package events writes the runner's event stream.
//
// A [Sink] stamps each event with its time and type and masks secrets in
// every free-text field: commands, output lines, log messages, errors and
// job outputs. It then hands the event to a [Writer], which is [JSONWriter]
// for the JSON-lines stream the sidecar reads or a terminal view. Free
// text longer than [MaxTextBytes] is cut. Job ids are not masked
// because the pipeline validates them as plain names.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/runner/mask"
	"github.com/octavo-ci/octavo/schema"
)

// Writer receives finished events, one at a time. Each event is a pointer
// to one of the event structs of package schema. The [Sink] serialises
// calls, so a Writer need not be safe for concurrent use.
type Writer interface {
	// WriteEvent writes one event. An error stops the run.
	WriteEvent(ev any) error
	// Flush pushes buffered events to the underlying stream.
	Flush() error
}

// OutputWriter is implemented by a [Writer] that writes sh_output events
// straight from a step's read buffer. The [Sink] uses it, when the Writer
// has it, to skip building an event struct and a string per output line.
type OutputWriter interface {
	// WriteOutput writes one sh_output event per element of lines, made of
	// its arguments, in order. lines is valid only during the call.
	WriteOutput(atMs int64, jobID string, seq int, stream schema.Stream, lines [][]byte) error
}

// Sink is the single place where events leave the runner. It is safe for
// concurrent use by every job and every output reader. After the first
// write error it drops further events and [Sink.Err] returns that error.
type Sink struct {
	masker *mask.Masker
	now    func() time.Time

	mu  sync.Mutex
	w   Writer
	err error
}

// NewSink returns a Sink that masks with masker (nil masks nothing) and
// writes to w. now stamps events; nil means [time.Now].
func NewSink(w Writer, masker *mask.Masker, now func() time.Time) *Sink {
	if now == nil {
		now = time.Now
	}
	return &Sink{w: w, masker: masker, now: now}
}

// Emit stamps, masks and writes ev, a pointer to an event struct of package
// schema whose envelope it fills in. It returns the sink's first write
// error, which the caller should treat as fatal for the run.
func (s *Sink) Emit(ev any) error {
	typ, err := s.prepare(ev)
	if err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err := s.w.WriteEvent(ev); err != nil {
		s.err = fmt.Errorf("write %s event: %w", typ, err)
	}
	return s.err
}

// EmitOutput writes one sh_output event per element of lines, all stamped
// with one time, under one lock, so the events of one batch are never
// interleaved with other events. It masks every line and may overwrite the
// elements of lines with masked copies; it keeps no reference to lines. It
// returns the sink's first write error, like [Sink.Emit].
func (s *Sink) EmitOutput(jobID string, seq int, stream schema.Stream, lines [][]byte) error {
	at := s.now().UnixMilli()
	if s.masker.MaxLen() > 0 {
		for i, line := range lines {
			lines[i] = s.masker.MaskBytes(line)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if ow, ok := s.w.(OutputWriter); ok {
		if err := ow.WriteOutput(at, jobID, seq, stream, lines); err != nil {
			s.err = fmt.Errorf("write %s event: %w", schema.TypeShOutput, err)
		}
		return s.err
	}
	for _, line := range lines {
		ev := &schema.ShOutput{
			Envelope: schema.Envelope{AtMs: at, Type: schema.TypeShOutput},
			JobID:    jobID, Seq: seq, Stream: stream, Line: string(line),
		}
		if err := s.w.WriteEvent(ev); err != nil {
			s.err = fmt.Errorf("write %s event: %w", schema.TypeShOutput, err)
			return s.err
		}
	}
	return nil
}

// Flush flushes the writer and returns the sink's first error.
func (s *Sink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err := s.w.Flush(); err != nil {
		s.err = fmt.Errorf("flush events: %w", err)
	}
	return s.err
}

// Err returns the first write or flush error, or nil.
func (s *Sink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Mask masks secrets in text that leaves the runner by another way than an
// event, such as a log line or the check command's output.
func (s *Sink) Mask(text string) string {
	return s.masker.Mask(text)
}

// prepare fills in the envelope of ev, masks and bounds its free-text
// fields, and returns its type.
func (s *Sink) prepare(ev any) (schema.Type, error) {
	at := s.now().UnixMilli()
	m := s.masker
	var typ schema.Type
	switch e := ev.(type) {
	case *schema.RunStarted:
		typ = schema.TypeRunStarted
		e.Envelope = schema.Envelope{AtMs: at, Type: typ}
		e.Schema = schema.Version
		if e.Jobs == nil {
			e.Jobs = []schema.JobNode{}
		}
	case *schema.JobStarted:
		typ = schema.TypeJobStarted
		e.Envelope = schema.Envelope{AtMs: at, Type: typ}
	case *schema.ShStarted:
		typ = schema.TypeShStarted
		e.Envelope = schema.Envelope{AtMs: at, Type: typ}
		e.Cmd = cutText(m.Mask(e.Cmd))
	case *schema.ShOutput:
		typ = schema.TypeShOutput
		e.Envelope = schema.Envelope{AtMs: at, Type: typ}
		e.Line = m.Mask(e.Line)
	case *schema.ShFinished:
		typ = schema.TypeShFinished
		e.Envelope = schema.Envelope{AtMs: at, Type: typ}
		e.Error = cutText(m.Mask(e.Error))
	case *schema.Log:
		typ = schema.TypeLog
		e.Envelope = schema.Envelope{AtMs: at, Type: typ}
		e.Message = cutText(m.Mask(e.Message))
	case *schema.JobFinished:
		typ = schema.TypeJobFinished
		e.Envelope = schema.Envelope{AtMs: at, Type: typ}
		e.Error = cutText(m.Mask(e.Error))
		if e.Outputs != nil {
			e.Outputs = maskValue(m, e.Outputs).(map[string]any)
		}
	case *schema.RunFinished:
		typ = schema.TypeRunFinished
		e.Envelope = schema.Envelope{AtMs: at, Type: typ}
		e.Error = cutText(m.Mask(e.Error))
	default:
		return "", fmt.Errorf("emit event: unsupported type %T", ev)
	}
	return typ, nil
}

// MaxTextBytes bounds the free text of one event: a command, a log
// message or an error. Output lines have their own, smaller bound, and
// outputs are bounded by the engine. Together they keep every event line
// well below the 4 MiB line limit of the sidecar's reader.
const MaxTextBytes = 64 << 10

// cutText shortens s to at most MaxTextBytes plus a note of what was cut,
// without splitting a UTF-8 character. It runs after masking, so the cut
// cannot leave part of a secret unmasked.
func cutText(s string) string {
	if len(s) <= MaxTextBytes {
		return s
	}
	cut := MaxTextBytes
	for cut > MaxTextBytes-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes cut)", s[:cut], len(s)-cut)
}

// maskValue returns a copy of v, a JSON value as decoded into any, with
// every string and object key masked.
func maskValue(m *mask.Masker, v any) any {
	switch x := v.(type) {
	case string:
		return m.Mask(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[m.Mask(k)] = maskValue(m, val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = maskValue(m, val)
		}
		return out
	default:
		return v
	}
}

// JSONWriter writes each event as one line of JSON (JSON Lines) through a
// buffer. Once the buffer holds jsonBufferSize bytes, a goroutine writes
// it out while the next one fills, so encoding overlaps the write system
// call. Writes still happen one at a time and in order. The owner must
// call Flush regularly, for example with [Sink.FlushEvery], so that a
// reader following the file receives events promptly, and once more at
// the end; after Flush returns no write is in progress. After a failed
// write every method returns that error.
type JSONWriter struct {
	w   io.Writer
	buf []byte
	enc *json.Encoder
	err error
	// prefix is scratch space for the part of an sh_output event before
	// its line, which a whole batch shares.
	prefix []byte

	// spare is the buffer being written in the background, or an idle
	// one. writing is true while a background write runs, and written
	// receives its result.
	spare   []byte
	writing bool
	written chan error
}

// jsonBufferSize is the amount of buffered output at which a [JSONWriter]
// starts writing to its file before the next flush. 256 KiB batches
// thousands of output lines per write system call on a busy step, and the
// two buffers stay small next to the runner's memory budget.
const jsonBufferSize = 256 << 10

// NewJSONWriter returns a JSONWriter that writes to w.
func NewJSONWriter(w io.Writer) *JSONWriter {
	j := &JSONWriter{w: w, buf: newJSONBuffer(), written: make(chan error, 1)}
	j.enc = json.NewEncoder((*appendWriter)(j))
	j.enc.SetEscapeHTML(false)
	return j
}

// newJSONBuffer returns an empty buffer with room for the last event that
// crosses jsonBufferSize.
func newJSONBuffer() []byte {
	return make([]byte, 0, jsonBufferSize+jsonBufferSize/4)
}

// appendWriter lets a json.Encoder append to the buffer of a JSONWriter.
type appendWriter JSONWriter

func (a *appendWriter) Write(p []byte) (int, error) {
	a.buf = append(a.buf, p...)
	return len(p), nil
}

// WriteEvent encodes ev followed by a newline.
func (j *JSONWriter) WriteEvent(ev any) error {
	if j.err != nil {
		return j.err
	}
	if out, ok := ev.(*schema.ShOutput); ok {
		j.buf = appendShOutput(j.buf, out)
	} else if err := j.enc.Encode(ev); err != nil {
		return err
	}
	return j.writeFull()
}

// WriteOutput encodes one sh_output event per line, each followed by a
// newline; it implements [OutputWriter]. The fields before the line are
// encoded once per batch.
func (j *JSONWriter) WriteOutput(atMs int64, jobID string, seq int, stream schema.Stream, lines [][]byte) error {
	if j.err != nil {
		return j.err
	}
	j.prefix = appendOutputPrefix(j.prefix[:0], atMs, schema.TypeShOutput, jobID, seq, stream)
	for _, line := range lines {
		j.buf = append(j.buf, j.prefix...)
		j.buf = appendString(j.buf, line)
		j.buf = append(j.buf, "}\n"...)
		if err := j.writeFull(); err != nil {
			return err
		}
	}
	return nil
}

// writeFull starts writing the buffer in the background once it holds
// jsonBufferSize bytes, after the previous background write ended.
func (j *JSONWriter) writeFull() error {
	if len(j.buf) < jsonBufferSize {
		return nil
	}
	if err := j.wait(); err != nil {
		return err
	}

	full := j.buf
	j.buf, j.spare = j.spare[:0], full
	if j.buf == nil {
		j.buf = newJSONBuffer()
	}
	j.writing = true
	go func() {
		_, err := j.w.Write(full)
		j.written <- err
	}()
	return nil
}

// wait waits for the background write, if any, and records its error.
func (j *JSONWriter) wait() error {
	if j.writing {
		j.writing = false
		if err := <-j.written; err != nil && j.err == nil {
			j.err = err
		}
	}
	return j.err
}

// Flush writes buffered lines to the underlying writer and returns when
// they were written.
func (j *JSONWriter) Flush() error {
	if err := j.wait(); err != nil {
		return err
	}
	if len(j.buf) == 0 {
		return nil
	}
	if _, err := j.w.Write(j.buf); err != nil {
		j.err = err
		return err
	}
	j.buf = j.buf[:0]
	if cap(j.buf) > 4*jsonBufferSize {
		// One huge event (large job outputs) grew the buffer; give the
		// memory back instead of keeping it for the rest of the run.
		j.buf = newJSONBuffer()
	}
	return nil
}

// FlushEvery flushes the sink every interval until ctx is done, so a
// reader of the stream lags at most about interval behind the run. It
// returns when ctx is done or a flush fails; the caller flushes once more
// at the end.
func (s *Sink) FlushEvery(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := s.Flush(); err != nil {
				return
			}
		}
	}
}
