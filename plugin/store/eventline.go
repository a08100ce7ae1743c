package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"
	"gorm.io/gorm"
)

// EventHeader is the part of an event line that ingestion and the readers
// need without decoding the whole event.
type EventHeader struct {
	Type  string
	JobID string
	AtMs  int64
}

// ScanEventHeader reads the "type", "job_id" and "at_ms" members of line
// without decoding the rest, at a fraction of the cost of encoding/json.
// ok is true only when line is exactly one JSON object (whitespace around
// it allowed) with a non-empty string "type" and only strings, numbers,
// true, false or null as member values. Such a line is valid JSON. For
// anything else (nested values, escapes in a key, type or job_id, an at_ms
// that is not an integer, invalid JSON) ok is false, and the caller decodes
// the line in full to learn why. When job equals the line's job_id,
// JobID is job itself rather than a new string.
func ScanEventHeader(line []byte, job string) (h EventHeader, ok bool) {
	if h, _, ok := scanRunnerOutput(line, job); ok {
		return h, true
	}
	return scanEventHeader(line, job)
}

// scanEventHeader is [ScanEventHeader] without the shortcut for the
// runner's own output lines.
func scanEventHeader(line []byte, job string) (h EventHeader, ok bool) {
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return h, false
	}
	i = skipSpace(line, i+1)
	for {
		if i >= len(line) || line[i] != '"' {
			return h, false
		}
		end, esc, ok := scanString(line, i)
		if !ok || esc {
			return h, false
		}
		key := line[i+1 : end-1]
		i = skipSpace(line, end)
		if i >= len(line) || line[i] != ':' {
			return h, false
		}
		i = skipSpace(line, i+1)
		if i >= len(line) {
			return h, false
		}
		known := string(key) == "type" || string(key) == "job_id" || string(key) == "at_ms"
		if !known && foldsToKnownKey(key) {
			// encoding/json matches member names regardless of case, and
			// the last match wins, so only a full decode reads this line
			// as the event's readers do.
			return h, false
		}
		switch c := line[i]; {
		case c == '"':
			end, esc, ok := scanString(line, i)
			if !ok || (known && esc) {
				return h, false
			}
			if known && !utf8.Valid(line[i+1:end-1]) {
				// A full decode replaces the invalid bytes.
				return h, false
			}
			switch string(key) {
			case "type":
				h.Type = internType(line[i+1 : end-1])
			case "job_id":
				if v := line[i+1 : end-1]; string(v) == job {
					h.JobID = job
				} else {
					h.JobID = string(v)
				}
			case "at_ms":
				return h, false
			}
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			end, isInt, ok := scanNumber(line, i)
			if !ok || (known && string(key) != "at_ms") || (string(key) == "at_ms" && !isInt) {
				return h, false
			}
			if string(key) == "at_ms" {
				n, ok := parseInt(line[i:end])
				if !ok {
					return h, false
				}
				h.AtMs = n
			}
			i = end
		default:
			end := literalEnd(line, i)
			if end < 0 || known {
				return h, false
			}
			i = end
		}
		i = skipSpace(line, i)
		if i >= len(line) {
			return h, false
		}
		if line[i] == '}' {
			break
		}
		if line[i] != ',' {
			return h, false
		}
		i = skipSpace(line, i+1)
	}
	if skipSpace(line, i+1) != len(line) || h.Type == "" {
		return h, false
	}
	return h, true
}

// scanRunnerOutput is [ScanEventHeader] for an sh_output line exactly as
// the runner writes it: members in the order of schema.ShOutput and no
// whitespace. Comparing the fixed parts as whole strings takes about half
// the time of the general scan. ok is false for any other line, which the
// general scan then reads. On success, value is the index of the opening
// quote of the line member's value.
func scanRunnerOutput(line []byte, job string) (h EventHeader, value int, ok bool) {
	const head, typeAndJob, seqKey, streamKey, lineKey = `{"at_ms":`, `,"type":"sh_output","job_id":"`, `","seq":`, `,"stream":"`, `","line":"`
	if !bytes.HasPrefix(line, []byte(head)) {
		return h, 0, false
	}
	i := len(head)
	end, isInt, ok := scanNumber(line, i)
	if !ok || !isInt {
		return h, 0, false
	}
	if h.AtMs, ok = parseInt(line[i:end]); !ok {
		return h, 0, false
	}
	i = end
	if !bytes.HasPrefix(line[i:], []byte(typeAndJob)) {
		return h, 0, false
	}
	i += len(typeAndJob) - 1
	var esc bool
	if end, esc, ok = scanString(line, i); !ok || esc || !utf8.Valid(line[i+1:end-1]) {
		return h, 0, false
	}
	if v := line[i+1 : end-1]; string(v) == job {
		h.JobID = job
	} else {
		h.JobID = string(v)
	}
	i = end - 1
	if !bytes.HasPrefix(line[i:], []byte(seqKey)) {
		return h, 0, false
	}
	i += len(seqKey)
	if end, isInt, ok = scanNumber(line, i); !ok || !isInt {
		return h, 0, false
	}
	if _, ok = parseInt(line[i:end]); !ok {
		return h, 0, false
	}
	i = end
	if !bytes.HasPrefix(line[i:], []byte(streamKey)) {
		return h, 0, false
	}
	i += len(streamKey) - 1
	if end, _, ok = scanString(line, i); !ok {
		return h, 0, false
	}
	i = end - 1
	if !bytes.HasPrefix(line[i:], []byte(lineKey)) {
		return h, 0, false
	}
	i += len(lineKey) - 1
	value = i
	if end, _, ok = scanString(line, i); !ok || end != len(line)-1 || line[end] != '}' {
		return h, 0, false
	}
	h.Type = "sh_output"
	return h, value, true
}

// OutputScanner recognises the sh_output lines of a stream that have
// exactly the runner's layout: the members of schema.ShOutput in order,
// without whitespace, each of the type that schema.Decode requires. Such a
// line is a valid event, so it needs no full decode. The output lines of a
// step differ only in the line's text and, every millisecond, in at_ms.
// So the scanner remembers everything before the text of the last line it
// read in full, and checks the next line with one comparison and a scan
// of its text. The zero value is ready to use; it is not safe for
// concurrent use.
type OutputScanner struct {
	prefix []byte // up to and including the opening quote of the line's text
	hdr    EventHeader
}

// Scan reports whether line is an output line in the runner's layout,
// and returns its header, as [ScanEventHeader] would. For any other line,
// ok is false and the caller decodes it in full.
func (s *OutputScanner) Scan(line []byte) (EventHeader, bool) {
	if n, ok := s.next(line, false); ok && n == len(line) {
		return s.hdr, true
	}
	if h, value, ok := scanRunnerOutput(line, s.hdr.JobID); ok {
		s.prefix = append(s.prefix[:0], line[:value+1]...)
		s.hdr = h
		return h, true
	}
	return EventHeader{}, false
}

// Next checks the line at the start of buf, which ends with a newline,
// with the shortcut only. When the line repeats the remembered part of the
// last output line, it returns the line's length without the newline, and
// [OutputScanner.Last] returns its header, exactly as [OutputScanner.Scan]
// of the line would. Otherwise ok is false, and the caller finds the
// line's end and calls Scan.
func (s *OutputScanner) Next(buf []byte) (n int, ok bool) {
	return s.next(buf, true)
}

// Last returns the header of the line that Next accepted last. Its job
// and at_ms are also available without a copy of the whole header, from
// [OutputScanner.Job] and [OutputScanner.AtMs].
func (s *OutputScanner) Last() EventHeader { return s.hdr }

// Job returns the job_id of the line that Next accepted last.
func (s *OutputScanner) Job() string { return s.hdr.JobID }

// AtMs returns the at_ms of the line that Next accepted last.
func (s *OutputScanner) AtMs() int64 { return s.hdr.AtMs }

func (s *OutputScanner) next(buf []byte, newline bool) (n int, ok bool) {
	p := len(s.prefix)
	if p == 0 || len(buf) <= p || string(buf[:p]) != string(s.prefix) {
		return 0, false
	}
	// The text's scan stops at a raw newline, because JSON strings
	// cannot contain control characters, so it never runs past the line.
	end, _, ok := scanString(buf, p-1)
	if !ok || end >= len(buf) || buf[end] != '}' {
		return 0, false
	}
	if newline && (end+1 >= len(buf) || buf[end+1] != '\n') {
		return 0, false
	}
	return end + 1, true
}

// foldsToKnownKey reports whether key differs from "type", "job_id" or
// "at_ms" only in case.
func foldsToKnownKey(key []byte) bool {
	switch len(key) {
	case len("type"):
		return strings.EqualFold(string(key), "type")
	case len("at_ms"):
		return strings.EqualFold(string(key), "at_ms")
	case len("job_id"):
		return strings.EqualFold(string(key), "job_id")
	}
	return false
}

// internType returns the event types the runner writes without allocating.
func internType(b []byte) string {
	switch string(b) {
	case "sh_output":
		return "sh_output"
	case "log":
		return "log"
	case "sh_started":
		return "sh_started"
	case "sh_finished":
		return "sh_finished"
	}
	return string(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString checks the JSON string starting at b[i] (a quote) and returns
// the index after its closing quote and whether it has escapes.
func scanString(b []byte, i int) (end int, esc, ok bool) {
	j := i + 1
	// Skip eight plain bytes at a time: none a quote, a backslash or a
	// control character. Output lines are mostly such bytes.
	for ; j+8 <= len(b); j += 8 {
		w := binary.LittleEndian.Uint64(b[j:])
		if hasLess(w, 0x20)|hasZero(w^(lsb*'"'))|hasZero(w^(lsb*'\\')) != 0 {
			break
		}
	}
	for ; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, esc, true
		case c == '\\':
			esc = true
			j++
			if j >= len(b) {
				return 0, false, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return 0, false, false
				}
				for _, h := range b[j+1 : j+5] {
					if !isHex(h) {
						return 0, false, false
					}
				}
				j += 4
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		}
	}
	return 0, false, false
}

// lsb has the lowest bit of every byte set; lsb*c repeats byte c.
const lsb = 0x0101010101010101

// hasZero is not 0 when a byte of w is 0.
func hasZero(w uint64) uint64 { return (w - lsb) & ^w & (lsb * 0x80) }

// hasLess is not 0 when a byte of w is below n (n at most 128).
func hasLess(w uint64, n uint64) uint64 { return (w - lsb*n) & ^w & (lsb * 0x80) }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanNumber checks the JSON number starting at b[i] and returns the index
// after it and whether it has neither fraction nor exponent.
func scanNumber(b []byte, i int) (end int, isInt, ok bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, false, false
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false, false
		}
		i = j
	}
	return i, isInt, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// parseInt converts an integer that [scanNumber] accepted. Up to 18
// digits cannot overflow an int64, so only longer ones take the slower
// checked path.
func parseInt(b []byte) (int64, bool) {
	digits := b
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) > 18 {
		n, err := strconv.ParseInt(string(b), 10, 64)
		return n, err == nil
	}
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	if len(digits) < len(b) {
		n = -n
	}
	return n, true
}

// literalEnd returns the index after the true, false or null at b[i], or
// -1.
func literalEnd(b []byte, i int) int {
	for _, lit := range []string{"true", "false", "null"} {
		if strings.HasPrefix(string(b[i:]), lit) {
			return i + len(lit)
		}
	}
	return -1
}

// HeaderOf returns the header of a stored event line, decoding it in full
// only when [ScanEventHeader] cannot read it. A line that is not a JSON
// object gets an empty header.
func HeaderOf(line string) EventHeader {
	if h, ok := ScanEventHeader([]byte(line), ""); ok {
		return h
	}
	var head struct {
		Type  string `json:"type"`
		JobID string `json:"job_id"`
		AtMs  int64  `json:"at_ms"`
	}
	_ = json.Unmarshal([]byte(line), &head) // a damaged line keeps an empty header
	return EventHeader{Type: head.Type, JobID: head.JobID, AtMs: head.AtMs}
}

// pageEvents reads the events p selects from the run's chunks: the chunks
// that hold a matching event in Seq order (descending for p.Tail), split
// into lines until p.Limit events are found.
func pageEvents(ctx context.Context, db *gorm.DB, p EventPage) ([]RunEvent, error) {
	if p.Limit <= 0 {
		return nil, fmt.Errorf("limit %d is not positive", p.Limit)
	}
	jobCond := ""
	var jobArg []any
	if p.Job != nil {
		jobCond = " AND job_name = ?"
		jobArg = []any{*p.Job}
	}
	q := "SELECT first_seq, job_name, data FROM run_event_chunks WHERE run_id = ? AND last_seq > ?" + jobCond
	args := append([]any{p.RunID, p.After}, jobArg...)
	if !p.Tail && p.After > 0 {
		// Chunks never overlap, so the first chunk with an event after
		// p.After is the last one starting at or before p.After+1. Naming
		// its first_seq lets the index range start there rather than at
		// the run's first chunk.
		q += " AND first_seq >= (SELECT COALESCE(MAX(first_seq), 0) FROM run_event_chunks WHERE run_id = ? AND first_seq <= ?" + jobCond + ")"
		args = append(append(args, p.RunID, p.After+1), jobArg...)
	}
	if p.Before > 0 {
		q += " AND first_seq < ?"
		args = append(args, p.Before)
	}
	if p.Tail {
		q += " ORDER BY first_seq DESC"
	} else {
		q += " ORDER BY first_seq ASC"
	}

	rows, err := db.WithContext(ctx).Raw(q, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("query event chunks: %w", err)
	}
	defer rows.Close()
	out := make([]RunEvent, 0, min(p.Limit, 1024))
	for len(out) < p.Limit && rows.Next() {
		var first int64
		var job string
		var data []byte
		if err := rows.Scan(&first, &job, &data); err != nil {
			return nil, fmt.Errorf("read event chunk: %w", err)
		}
		text, err := s2.Decode(nil, data)
		if err != nil {
			return nil, fmt.Errorf("decompress events from %d of run %d: %w", first, p.RunID, err)
		}
		// One string for the chunk; each event's Data is a slice of it.
		lines := strings.Split(string(text), "\n")
		keep := func(i int) bool {
			seq := first + int64(i)
			if seq <= p.After || (p.Before > 0 && seq >= p.Before) {
				return true
			}
			h := HeaderOf(lines[i])
			out = append(out, RunEvent{RunID: p.RunID, Seq: seq, Type: h.Type, JobName: job, AtMs: h.AtMs, Data: lines[i]})
			return len(out) < p.Limit
		}
		if p.Tail {
			for i := len(lines) - 1; i >= 0 && keep(i); i-- {
			}
		} else {
			for i := 0; i < len(lines) && keep(i); i++ {
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read event chunks: %w", err)
	}
	if p.Tail {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out, nil
}
