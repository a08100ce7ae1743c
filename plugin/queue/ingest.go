package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
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
	// readBlock is the size of the reading goroutine's buffer. It hands
	// over the complete lines of every read at once, so a quiet run's
	// lines are not held back and a busy run's come in large batches.
	readBlock = 256 << 10
	// flushInterval is the longest an event waits for companions before
	// its batch is committed; it bounds the live view's added latency.
	flushInterval = 20 * time.Millisecond
	// readAhead is how many batches the reader may read ahead of the
	// writer. With one transaction's worth in the writer, this bounds a
	// run's buffered stream to about 8 MiB besides the pipe.
	readAhead = maxBatchBytes / readBlock
	// freeBlocks bounds the read blocks kept for reuse: about as many as
	// can be in use at once.
	freeBlocks = readAhead + maxBatchBytes/readBlock
	// maxWarnings is the number of invalid-line warnings logged per run;
	// the rest are only counted.
	maxWarnings = 10
)

// ingester stores one run's event stream. After start, only its write
// goroutine touches the fields, except free and warnings, which the
// reading goroutine uses too.
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
	// warnings counts the problems logged, from both goroutines.
	warnings atomic.Int32

	// free holds read blocks that no batch uses any more. The reader
	// fills them again, so a run that prints hundreds of megabytes does
	// not allocate a fresh block for every read.
	free chan *block
	// chunks is kept from one transaction to the next for its buffers.
	chunks *store.ChunkWriter
}

// block is one read buffer, shared by the batches read into it. A block
// of readBlock bytes goes back to the free list once the reader has moved
// on and every batch in it is stored, unless a batch's events went to the
// live hub, which may still read them.
type block struct {
	data      []byte
	refs      atomic.Int32
	published atomic.Bool
}

// newBlock returns a block of size bytes with one reference, for the
// reader, reusing a free one when size is readBlock.
func (g *ingester) newBlock(size int) *block {
	var b *block
	if size == readBlock {
		select {
		case b = <-g.free:
			b.published.Store(false)
		default:
		}
	}
	if b == nil {
		b = &block{data: make([]byte, size)}
	}
	b.refs.Store(1)
	return b
}

// release drops one reference to b and frees it after the last.
func (g *ingester) release(b *block) {
	if b.refs.Add(-1) != 0 || b.published.Load() || len(b.data) != readBlock {
		return
	}
	select {
	case g.free <- b:
	default:
	}
}

func newIngester(q *Queue, r *store.Run, log *slog.Logger) *ingester {
	return &ingester{
		q: q, run: r, log: log, seq: r.LastSeq,
		free:   make(chan *block, freeBlocks),
		chunks: store.NewChunkWriter(nil, r.ID),
	}
}

// lineBatch is a run of complete lines of the event stream, read and
// classified by the reading goroutine so that work overlaps with the
// database writes. buf is the stream's bytes as read, newlines included,
// in block blk, which is not written again until the batch is stored.
type lineBatch struct {
	blk  *block
	buf  []byte
	segs []segment
	// lines is the number of lines in segs, valid or not.
	lines int
}

// segment is a part of a [lineBatch]. It is either a run of output lines
// of one job, each checked by [store.OutputScanner] and kept as written,
// or one other line. Every other line is decoded in full into dec, because
// its event changes jobs, steps or the run, or because it is invalid.
// buf[start:end] is the segment's lines joined by newlines, without the
// last line's ending.
type segment struct {
	start, end int
	// count is the number of events: the lines of an output run, 1 for a
	// valid other line and 0 for an invalid one.
	count int
	job   string
	typ   string
	// atMs is the at_ms of the segment's last event.
	atMs int64
	dec  *decodedLine
}

// decodedLine is the full decoding of a line: the event, or why the line
// is no valid event.
type decodedLine struct {
	ev  any
	err error
}

// splitLines classifies the lines of complete, which ends with a newline.
// Output lines of one job join the run right before them. A line ending in
// a carriage return ends a run, because the carriage return lies between
// it and the next line, so a run's text never contains one.
func splitLines(complete []byte, sc *store.OutputScanner, sizeHint int) *lineBatch {
	b := &lineBatch{buf: complete, segs: make([]segment, 0, max(sizeHint, 1))}
	for start := 0; start < len(complete); {
		if n, ok := sc.Next(complete[start:]); ok {
			b.lines++
			b.addOutput(start, start+n, sc.Job(), sc.AtMs())
			start += n + 1
			continue
		}
		nl := start + bytes.IndexByte(complete[start:], '\n')
		end := nl
		for end > start && complete[end-1] == '\r' {
			end--
		}
		b.addLine(sc, start, end)
		start = nl + 1
	}
	return b
}

// addLine classifies the line buf[start:end] that the scanner's shortcut
// did not take, and adds it.
func (b *lineBatch) addLine(sc *store.OutputScanner, start, end int) {
	b.lines++
	if h, ok := sc.Scan(b.buf[start:end]); ok {
		b.addOutput(start, end, h.JobID, h.AtMs)
		return
	}
	raw := b.buf[start:end]
	seg := segment{start: start, end: end}
	if ev, err := schema.Decode(raw); err != nil {
		seg.dec = &decodedLine{err: err}
	} else {
		env := envelopeOf(ev)
		seg.dec = &decodedLine{ev: ev}
		// The job's name as the jobs table has it, so that a job's events
		// are found by that name.
		seg.count, seg.job, seg.typ, seg.atMs = 1, dropNUL(jobNameOf(ev)), string(env.Type), env.AtMs
	}
	b.segs = append(b.segs, seg)
}

// addOutput adds the output line buf[start:end] of job to the run of
// job's output lines that ends right before it, or starts a run.
func (b *lineBatch) addOutput(start, end int, job string, atMs int64) {
	if n := len(b.segs); n > 0 {
		if seg := &b.segs[n-1]; seg.dec == nil && seg.end+1 == start && seg.job == job {
			seg.end, seg.count, seg.atMs = end, seg.count+1, atMs
			return
		}
	}
	b.segs = append(b.segs, segment{start: start, end: end, count: 1, job: job, typ: string(schema.TypeShOutput), atMs: atMs})
}

// readLines reads r in blocks, splits off the complete lines, classifies
// them and sends each block's lines to out as one batch, closing out at
// EOF. A trailing fragment without a newline is not an event (the runner
// died mid-write) and is dropped with a warning, and so is a line longer
// than maxEventLine.
func (g *ingester) readLines(r io.Reader, out chan<- *lineBatch) {
	defer close(out)
	// buf holds the bytes not yet sent. Sent bytes stay in the block
	// before buf, which is only ever appended to, so batches never see
	// their bytes change.
	cur := g.newBlock(readBlock)
	defer func() { g.release(cur) }()
	buf := cur.data[:0]
	// moveTo continues buf in a new block of size bytes.
	moveTo := func(size int) {
		next := g.newBlock(size)
		buf = append(next.data[:0], buf...)
		g.release(cur)
		cur = next
	}
	skipping := false // inside a line longer than maxEventLine
	segs := 0         // segments in the previous batch, to size the next
	var sc store.OutputScanner
	for {
		if len(buf) == cap(buf) {
			// A full buffer without a newline: the line is longer than the
			// buffer. Grow it to one byte over the limit at most, and drop
			// a line that fills even that.
			if len(buf) > maxEventLine {
				if !skipping {
					g.warn("event line longer than the maximum skipped", "max_bytes", maxEventLine)
				}
				skipping, buf = true, buf[:0]
			} else {
				moveTo(min(2*cap(buf), maxEventLine+1))
			}
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]

		if last := bytes.LastIndexByte(buf, '\n'); last >= 0 {
			complete := buf[:last+1]
			buf = buf[last+1:]
			if skipping {
				complete = complete[bytes.IndexByte(complete, '\n')+1:]
				skipping = false
			}
			if len(complete) > 0 {
				batch := splitLines(complete, &sc, segs)
				segs = len(batch.segs)
				batch.blk = cur
				cur.refs.Add(1)
				out <- batch
			}
			if cap(buf)-len(buf) < readBlock/4 {
				moveTo(max(readBlock, 2*len(buf)))
			}
		}

		if err != nil {
			if len(buf) > 0 || skipping {
				g.warn("partial last line of the event stream dropped", "bytes", len(buf))
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
		lines, size := b.lines, len(b.buf)
		timer.Reset(flushInterval)
	collect:
		for lines < maxBatch && size < maxBatchBytes {
			select {
			case b, ok := <-in:
				if !ok {
					break collect
				}
				batches = append(batches, b)
				lines, size = lines+b.lines, size+len(b.buf)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		published := g.flush(ctx, batches)
		for _, b := range batches {
			if published {
				b.blk.published.Store(true)
			}
			g.release(b.blk)
		}
		clear(batches)
	}
}

// flush stores the valid events of batches, with their jobs and steps, in
// one transaction, then hands the events to live viewers if the run has
// any. It reports whether it did, since those events share the batches'
// blocks.
func (g *ingester) flush(ctx context.Context, batches []*lineBatch) (published bool) {
	ctx, cancel := cleanupCtx(ctx)
	defer cancel()

	// Count and log the skipped lines, and follow the run's result through
	// the stream even when storing it fails, so a database error never
	// masks what the pipeline did.
	events := 0
	var decoded []any
	var lastAtMs int64
	for _, b := range batches {
		for _, seg := range b.segs {
			if seg.dec != nil && seg.dec.err != nil {
				g.skipped(seg.dec.err)
				continue
			}
			events += seg.count
			lastAtMs = seg.atMs
			g.lastType, g.finished = schema.Type(seg.typ), nil
			if seg.dec != nil {
				decoded = append(decoded, seg.dec.ev)
				if rf, ok := seg.dec.ev.(*schema.RunFinished); ok {
					g.finished = rf
				}
			}
		}
	}
	if events == 0 {
		return false
	}

	err := g.q.prepared.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		w := g.chunks
		w.Reset(tx)
		next := g.seq + 1
		for _, b := range batches {
			for _, seg := range b.segs {
				if err := w.Add(next, seg.job, b.buf[seg.start:seg.end], seg.count); err != nil {
					return err
				}
				next += int64(seg.count)
			}
		}
		if err := w.Close(); err != nil {
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
		g.log.ErrorContext(ctx, "store run events", "events", events, "err", err)
		return false
	}

	first := g.seq + 1
	g.seq += int64(events)
	if m := g.q.opts.Metrics; m != nil {
		m.IngestLag.Observe(time.Since(time.UnixMilli(lastAtMs)).Seconds())
	}
	// Splitting the batch into events costs more than storing it, so it
	// is done only for a run that someone watches. A viewer who arrives
	// after this check reads these events from the store.
	if live := g.q.opts.Live; live != nil && live.Watched(g.run.ID) {
		live.Publish(g.run.ID, g.runEvents(batches, first))
		return true
	}
	return false
}

// runEvents splits the stored segments of batches into events numbered
// from first.
func (g *ingester) runEvents(batches []*lineBatch, first int64) []store.RunEvent {
	var out []store.RunEvent
	if n := int(g.seq - first + 1); n > 0 {
		out = make([]store.RunEvent, 0, n)
	}
	seq := first
	for _, b := range batches {
		// Each event's Data is a slice of the batch's buffer, seen as a
		// string without a copy: the caller marks the block published, so
		// it is never reused and its bytes stay as they are.
		text := unsafe.String(unsafe.SliceData(b.buf), len(b.buf))
		for _, seg := range b.segs {
			if seg.count == 0 {
				continue
			}
			for start := seg.start; start <= seg.end; {
				end := start + strings.IndexByte(text[start:seg.end], '\n')
				if end < start {
					end = seg.end
				}
				ev := store.RunEvent{RunID: g.run.ID, Seq: seq, Type: seg.typ, JobName: seg.job, AtMs: seg.atMs, Data: text[start:end]}
				if seg.count > 1 {
					ev.AtMs = store.HeaderOf(ev.Data).AtMs
				}
				out = append(out, ev)
				seq++
				start = end + 1
			}
		}
	}
	return out
}

// skipped counts an invalid line and logs the first ones.
func (g *ingester) skipped(err error) {
	m := g.q.opts.Metrics
	if errors.Is(err, schema.ErrUnknownType) {
		g.unknown++
		if m != nil {
			m.UnknownEvents.Inc()
		}
		g.warn("unknown event type skipped", "err", err)
		return
	}
	g.invalid++
	if m != nil {
		m.InvalidEvents.Inc()
	}
	g.warn("invalid event skipped", "err", err)
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
	if g.warnings.Add(1) > maxWarnings {
		return
	}
	g.log.Warn(msg, args...)
}

// Bounds of the at_ms values that atTime keeps: years 1 to 9999, the
// range both databases store.
const (
	minAtMs = -62135596800000
	maxAtMs = 253402300799999
)

// atTime returns the time of an event's at_ms. An at_ms beyond what the
// databases store comes from a broken runner, and the ingestion time
// takes its place.
func atTime(ms int64) time.Time {
	if ms < minAtMs || ms > maxAtMs {
		return time.Now().UTC()
	}
	return time.UnixMilli(ms).UTC()
}

func envelopeOf(ev any) schema.Envelope {
	if e, ok := ev.(schema.Event); ok {
		return e.EventEnvelope()
	}
	return schema.Envelope{}
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
