package events

import (
	"strconv"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/schema"
)

// appendShOutput appends ev as JSON followed by a newline, byte for byte as
// json.Encoder with SetEscapeHTML(false) writes it. Output lines are most
// of a stream, and encoding them without reflection keeps the runner's cost
// per line low (see BenchmarkSinkShOutput).
func appendShOutput(b []byte, ev *schema.ShOutput) []byte {
	b = appendOutputPrefix(b, ev.AtMs, ev.Type, ev.JobID, ev.Seq, ev.Stream)
	b = appendString(b, ev.Line)
	return append(b, "}\n"...)
}

// appendOutputPrefix appends the start of an sh_output event, up to the
// line's opening quote, so that lines of one batch share it.
func appendOutputPrefix(b []byte, atMs int64, typ schema.Type, jobID string, seq int, stream schema.Stream) []byte {
	b = append(b, `{"at_ms":`...)
	b = strconv.AppendInt(b, atMs, 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(typ))
	b = append(b, `,"job_id":`...)
	b = appendString(b, jobID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"stream":`...)
	b = appendString(b, string(stream))
	return append(b, `,"line":`...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does
// without HTML escaping: invalid UTF-8 becomes \ufffd, and U+2028 and
// U+2029 are escaped for JavaScript.
func appendString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		// The conversion of at most four bytes does not allocate.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
