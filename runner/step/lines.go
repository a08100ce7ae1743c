package step

import (
	"bytes"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/runner/mask"
)

// readSize is the number of bytes one read from a step's pipe requests.
// 256 KiB is a quarter of the capacity the pipes get on Linux, so one read
// takes thousands of short lines while the step keeps writing.
const readSize = 256 << 10

// splitLines reads r to EOF or error and calls emit once per read with the
// lines completed by that read, in order, each without the "\n" or "\r\n"
// terminator. The slices point into splitLines' buffer and are valid only
// until emit returns; emit may overwrite the elements of lines but must not
// keep them. Lines are split in place, so a read costs no allocation per
// line. A line longer than maxLine bytes is emitted as several pieces of at
// most maxLine bytes. A piece never ends inside a
// UTF-8 sequence or inside a secret that masker masks, so it may be up to
// three bytes, or one secret, shorter. Bytes that are not valid UTF-8 are
// replaced by U+FFFD, one per maximal invalid run. Every byte read is also
// written to capture. A final line without a terminator is still emitted.
func splitLines(r io.Reader, maxLine int, masker *mask.Masker, capture io.Writer, emit func(lines [][]byte)) error {
	look := max(masker.MaxLen()-1, 0)
	// After process, at most maxLine+look bytes stay pending, so a read
	// always has readSize bytes of room.
	buf := getReadBuffer(maxLine + look + readSize)
	defer readBuffers.Put(&buf)
	start, end := 0, 0
	// inLine is true after a piece of a long line was emitted and before its
	// terminator, so that a terminator right after a piece emits nothing.
	inLine := false
	var batch [][]byte
	add := func(line []byte) {
		batch = append(batch, toText(line))
	}

	process := func(eof bool) {
		defer func() {
			if len(batch) > 0 {
				emit(batch)
				clear(batch)
				batch = batch[:0]
			}
		}()
		// One utf8.Valid call over all complete lines is much cheaper than
		// one per short line. Up to validEnd, lines need no check of their
		// own.
		validEnd := start
		if last := bytes.LastIndexByte(buf[start:end], '\n'); last >= 0 && utf8.Valid(buf[start:start+last]) {
			validEnd = start + last
		}
		for start < end {
			pending := buf[start:end]
			nl := bytes.IndexByte(pending, '\n')
			if nl >= 0 && nl <= maxLine {
				switch {
				case nl == 0 && inLine:
				case start+nl <= validEnd:
					batch = append(batch, trimCR(pending[:nl]))
				default:
					add(trimCR(pending[:nl]))
				}
				start += nl + 1
				inLine = false
				continue
			}

			line := pending
			if nl >= 0 {
				line = pending[:nl]
			} else if !eof && len(pending) <= maxLine+look {
				// Wait for more: the next byte may be the terminator of a
				// line of exactly maxLine bytes, or complete a secret.
				return
			}
			if len(line) <= maxLine {
				// Only reached at EOF: the last line has no terminator.
				add(trimCR(line))
				start = end
				return
			}

			cut := runeCut(line, maxLine)
			cut = masker.SafeCut(line[:min(len(line), maxLine+look)], cut)
			add(line[:cut])
			start += cut
			inLine = true
		}
	}

	for {
		if start > 0 {
			copy(buf, buf[start:end])
			end -= start
			start = 0
		}
		n, err := r.Read(buf[end:])
		if n > 0 {
			_, _ = capture.Write(buf[end : end+n])
			end += n
		}
		if err != nil {
			process(true)
			if err == io.EOF {
				return nil
			}
			return err
		}
		process(false)
	}
}

// readBuffers keeps the read buffers of finished streams. A buffer is a
// few hundred KiB, and reusing it keeps a pipeline of many short steps
// from allocating and clearing two of them per step.
var readBuffers sync.Pool

// getReadBuffer returns a buffer of size bytes from readBuffers, or a new
// one when the pool has none that is large enough.
func getReadBuffer(size int) []byte {
	if p, ok := readBuffers.Get().(*[]byte); ok && cap(*p) >= size {
		return (*p)[:size]
	}
	return make([]byte, size)
}

// trimCR removes one trailing "\r". It is bytes.TrimSuffix without the
// call to bytes.Equal, which costs more than the check on short lines.
func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// runeCut moves cut back, by at most three bytes, so that it does not fall
// inside a UTF-8 sequence. Invalid text keeps the cut where it was.
func runeCut(b []byte, cut int) int {
	for i := cut; i > 0 && i > cut-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return cut
}

// toText returns b when it is valid UTF-8, and otherwise a copy with each
// maximal run of invalid bytes replaced by U+FFFD.
func toText(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return bytes.ToValidUTF8(b, []byte("\uFFFD"))
}

// boundedBuffer keeps the first limit bytes written to it and counts the
// rest. Its zero value with limit 0 discards everything.
type boundedBuffer struct {
	limit     int
	buf       []byte
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	room := b.limit - len(b.buf)
	if len(p) > room {
		b.truncated = true
		b.buf = append(b.buf, p[:max(room, 0)]...)
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}
