package queue

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"
	"unsafe"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/schema"
)

const (
	// maxEventLine bounds one event line. The runner splits long output
	// lines into several events, so a longer line is not a valid event.
	maxEventLine = 4 << 20
	// maxBatch and maxBatchBytes bound the events stored in one
	// transaction.
	maxBatch      = 16384
	maxBatchBytes = 4 << 20
	// readBatchLines and readBatchBytes bound the lines the reading
	// goroutine hands over at once; it hands over sooner whenever the
	// stream has nothing more buffered, so a quiet run's lines are not
	// held back.
	readBatchLines = 4096
	readBatchBytes = 256 << 10
	// flushInterval is the longest an event waits for companions before
	// its batch is committed; it bounds the live view's added latency.
	flushInterval = 20 * time.Millisecond
	// maxWarnings is the number of invalid-line warnings logged per run;
	// the rest are only counted.
	maxWarnings = 10
)

// ingester stores one run's event stream. Only its write goroutine touches
// the fields after start.
type ingester struct {
	q   *Queue
	run *store.Run
	log *slog.Logger

	seq int64
	// finished is the run_finished event when it is the last valid event
	// so far.
	finished *schema.RunFinished
	// lastType is the type of the last valid event.
	lastType schema.Type
	invalid  int
	unknown  int
	dbErrs   int
}

func newIngester(q *Queue, r *store.Run, log *slog.Logger) *ingester {
	return &ingester{q: q, run: r, log: log, seq: r.LastSeq}
}

// lineBatch is a run of complete lines of the event stream, read and
// classified by the reading goroutine so that work overlaps with the
// database writes. The lines share one buffer to spare an allocation per
// line.
type lineBatch struct {
	buf   []byte
	lines []streamLine
}

// streamLine is one line of a [lineBatch]: buf[start:end]. Output lines
// only get their header read (checking that the line is a JSON object);
// every other event, which changes jobs, steps or the run, is decoded in
// full into ev. err is set for a line that is no valid event.
type streamLine struct {
	start, end int
	hdr        store.EventHeader
	ev         any
	err        error
}

func (b *lineBatch) add(raw []byte) {
	l := streamLine{start: len(b.buf)}
	b.buf = append(b.buf, raw...)
	l.end = len(b.buf)
	prevJob := ""
	if len(b.lines) > 0 {
		prevJob = b.lines[len(b.lines)-1].hdr.JobID
	}
	if h, ok := store.ScanEventHeader(raw, prevJob); ok && h.Type == string(schema.TypeShOutput) {
		l.hdr = h
	} else if ev, err := schema.Decode(raw); err != nil {
		l.err = err
	} else {
		env := envelopeOf(ev)
		l.ev = ev
		l.hdr = store.EventHeader{Type: string(env.Type), JobID: jobNameOf(ev), AtMs: env.AtMs}
	}
	b.lines = append(b.lines, l)
}

// readLines splits r into complete lines, classifies them and sends them
// to out in batches, closing out at EOF. A trailing fragment without a
// newline is not an event (the runner died mid-write) and is dropped with a
// warning, and so is a line longer than maxEventLine.
func (g *ingester) readLines(r io.Reader, out chan<- *lineBatch) {
	defer close(out)
	br := bufio.NewReaderSize(r, 64<<10)
	batch := new(lineBatch)
	send := func() {
		if len(batch.lines) > 0 {
			out <- batch
			// Size the next batch like this one: a fast stream fills
			// batches, a quiet one sends lines one by one.
			batch = &lineBatch{buf: make([]byte, 0, len(batch.buf)), lines: make([]streamLine, 0, len(batch.lines))}
		}
	}
	var long []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if tooLong {
				g.warn("event line longer than the maximum skipped", "max_bytes", maxEventLine)
				tooLong, long = false, long[:0]
				continue
			}
			line := chunk
			if len(long) > 0 {
				line = append(long, chunk...)
				long = long[:0]
			}
			batch.add(bytes.TrimRight(line, "\r\n"))
			if br.Buffered() == 0 || len(batch.lines) >= readBatchLines || len(batch.buf) >= readBatchBytes {
				send()
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong {
				long = append(long, chunk...)
				if len(long) > maxEventLine {
					tooLong, long = true, long[:0]
				}
			}
		default:
			send()
			if len(chunk)+len(long) > 0 || tooLong {
				g.warn("partial last line of the event stream dropped", "bytes", len(chunk)+len(long))
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) {
				g.log.Warn("read event stream", "err", err)
			}
			return
		}
	}
}

// writeLoop commits the lines from in in batches until in is closed.
func (g *ingester) writeLoop(ctx context.Context, in <-chan *lineBatch) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batches []*lineBatch
	for {
		b, ok := <-in
		if !ok {
			return
		}
		batches = append(batches[:0], b)
		lines, size := len(b.lines), len(b.buf)
		timer.Reset(flushInterval)
	collect:
		for lines < maxBatch && size < maxBatchBytes {
			select {
			case b, ok := <-in:
				if !ok {
					break collect
				}
				batches = append(batches, b)
				lines, size = lines+len(b.lines), size+len(b.buf)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		g.flush(ctx, batches, lines)
	}
}

// flush stores the valid events of a batch, with their jobs and steps, in
// one transaction, then hands the events to live viewers.
func (g *ingester) flush(ctx context.Context, batches []*lineBatch, lines int) {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()

	events := make([]store.RunEvent, 0, lines)
	var decoded []any
	for _, b := range batches {
		// Each event's Data is a slice of the batch's buffer, seen as a
		// string without a copy: the reader never touches a buffer again
		// once it has sent it.
		text := unsafe.String(unsafe.SliceData(b.buf), len(b.buf))
		for _, line := range b.lines {
			err := line.err
			if errors.Is(err, schema.ErrUnknownType) {
				g.unknown++
				if g.q.opts.Metrics != nil {
					g.q.opts.Metrics.UnknownEvents.Inc()
				}
				g.warn("unknown event type skipped", "err", err)
				continue
			}
			if err != nil {
				g.invalid++
				if g.q.opts.Metrics != nil {
					g.q.opts.Metrics.InvalidEvents.Inc()
				}
				g.warn("invalid event skipped", "err", err)
				continue
			}
			events = append(events, store.RunEvent{
				RunID: g.run.ID, Seq: g.seq + int64(len(events)) + 1,
				Type: line.hdr.Type, JobName: line.hdr.JobID, AtMs: line.hdr.AtMs, Data: text[line.start:line.end],
			})
			// The run's result follows the stream even when storing it
			// fails, so a database error never masks what the pipeline did.
			g.lastType = schema.Type(line.hdr.Type)
			g.finished = nil
			if line.ev != nil {
				decoded = append(decoded, line.ev)
				if rf, ok := line.ev.(*schema.RunFinished); ok {
					g.finished = rf
				}
			}
		}
	}
	if len(events) == 0 {
		return
	}

	err := g.q.prepared.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := store.AppendEvents(tx, g.run.ID, events); err != nil {
			return err
		}
		for _, ev := range decoded {
			if err := g.apply(tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		g.dbErrs++
		g.log.ErrorContext(ctx, "store run events", "events", len(events), "err", err)
		return
	}

	g.seq = events[len(events)-1].Seq
	if m := g.q.opts.Metrics; m != nil {
		last := events[len(events)-1].AtMs
		m.IngestLag.Observe(time.Since(time.UnixMilli(last)).Seconds())
	}
	if g.q.opts.Live != nil {
		g.q.opts.Live.Publish(g.run.ID, events)
	}
}

// apply updates jobs and steps for one event inside tx.
func (g *ingester) apply(tx *gorm.DB, ev any) error {
	runID := g.run.ID
	switch ev := ev.(type) {
	case *schema.RunStarted:
		jobs := make([]store.Job, 0, len(ev.Jobs))
		for i, n := range ev.Jobs {
			inputs, err := json.Marshal(n.Inputs)
			if err != nil {
				return err
			}
			if n.Inputs == nil {
				inputs = []byte("[]")
			}
			jobs = append(jobs, store.Job{
				RunID: runID, Name: dropNUL(n.ID), Position: i, Inputs: string(inputs),
				AllowFailure: n.AllowFailure, State: "pending",
			})
		}
		return store.CreateJobs(tx, jobs)
	case *schema.JobStarted:
		at := atTime(ev.AtMs)
		j, err := store.UpdateJob(tx, runID, dropNUL(ev.JobID), "running", "", &at, nil)
		if err != nil {
			return err
		}
		return g.notifyJob(tx, j)
	case *schema.JobFinished:
		at := atTime(ev.AtMs)
		j, err := store.UpdateJob(tx, runID, dropNUL(ev.JobID), dropNUL(string(ev.Outcome)), dropNUL(ev.Error), nil, &at)
		if err != nil {
			return err
		}
		return g.notifyJob(tx, j)
	case *schema.ShStarted:
		at := atTime(ev.AtMs)
		return store.StartStep(tx, &store.Step{RunID: runID, JobName: dropNUL(ev.JobID), Seq: ev.Seq, Cmd: dropNUL(ev.Cmd), StartedAt: &at})
	case *schema.ShFinished:
		at := atTime(ev.AtMs)
		code := ev.ExitCode
		return store.FinishStep(tx, &store.Step{RunID: runID, JobName: dropNUL(ev.JobID), Seq: ev.Seq, ExitCode: &code, Error: dropNUL(ev.Error), FinishedAt: &at})
	}
	return nil
}

func (g *ingester) notifyJob(tx *gorm.DB, j *store.Job) error {
	if g.q.opts.JobObserver == nil {
		return nil
	}
	return g.q.opts.JobObserver.JobChanged(tx, g.run, j)
}

// warn logs the first maxWarnings problems of a run's stream.
func (g *ingester) warn(msg string, args ...any) {
	if g.invalid+g.unknown > maxWarnings {
		return
	}
	g.log.Warn(msg, args...)
}

func atTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func envelopeOf(ev any) schema.Envelope {
	switch ev := ev.(type) {
	case *schema.RunStarted:
		return ev.Envelope
	case *schema.JobStarted:
		return ev.Envelope
	case *schema.ShStarted:
		return ev.Envelope
	case *schema.ShOutput:
		return ev.Envelope
	case *schema.ShFinished:
		return ev.Envelope
	case *schema.Log:
		return ev.Envelope
	case *schema.JobFinished:
		return ev.Envelope
	case *schema.RunFinished:
		return ev.Envelope
	default:
		return schema.Envelope{}
	}
}

func jobNameOf(ev any) string {
	switch ev := ev.(type) {
	case *schema.JobStarted:
		return ev.JobID
	case *schema.ShStarted:
		return ev.JobID
	case *schema.ShOutput:
		return ev.JobID
	case *schema.ShFinished:
		return ev.JobID
	case *schema.Log:
		return ev.JobID
	case *schema.JobFinished:
		return ev.JobID
	default:
		return ""
	}
}
