package live

import (
	"encoding/json"
	"fmt"
	"html"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/logline"
	"github.com/octavo-ci/octavo/schema"
)

// Message is one stored event as viewers receive it: the event's sequence
// number within its run, the event JSON as the runner wrote it, and the log
// line the status page shows for it as HTML. Output lines are rendered by
// [logline.HTML]; other events get a short escaped description. HTML is
// nil for event types this version does not know, and points to "" for an
// empty output line, which is shown.
type Message struct {
	Seq   int64           `json:"seq"`
	Event json.RawMessage `json:"event"`
	HTML  *string         `json:"html,omitempty"`
}

// NewMessage builds the viewer message for ev. Data that is not valid JSON
// (the store never holds such rows, but a damaged row must not break the
// page) is sent as a JSON string. Bytes that are not UTF-8 become U+FFFD,
// as encoding/json decodes them: a browser closes a websocket whose text
// frame is not UTF-8.
func NewMessage(ev store.RunEvent) Message {
	m := Message{Seq: ev.Seq}
	data := ev.Data
	if !utf8.ValidString(data) {
		data = strings.ToValidUTF8(data, "\uFFFD")
	}
	if !json.Valid([]byte(data)) {
		m.Event = json.RawMessage(strconv.Quote(data))
		return m
	}
	m.Event = json.RawMessage(data)
	if h, ok := lineHTML(schema.Type(ev.Type), m.Event); ok {
		m.HTML = &h
	}
	return m
}

// EncodeMessage returns the JSON text of [NewMessage] for ev.
func EncodeMessage(ev store.RunEvent) []byte {
	b, err := json.Marshal(NewMessage(ev))
	if err != nil {
		// json.Marshal fails only on invalid RawMessage, which NewMessage
		// rules out; keep the sequence number so the viewer can resume.
		return []byte(`{"seq":` + strconv.FormatInt(ev.Seq, 10) + `,"event":null}`)
	}
	return b
}

// LineHTML returns the HTML of the log line for ev, as in [Message], and
// false when the page shows no line for ev.
func LineHTML(ev store.RunEvent) (string, bool) {
	return lineHTML(schema.Type(ev.Type), json.RawMessage(ev.Data))
}

func lineHTML(typ schema.Type, data json.RawMessage) (string, bool) {
	switch typ {
	case schema.TypeShOutput:
		var e schema.ShOutput
		if json.Unmarshal(data, &e) == nil {
			return logline.HTML(e.Line), true
		}
	case schema.TypeLog:
		var e schema.Log
		if json.Unmarshal(data, &e) == nil {
			if e.Level != "" && e.Level != "info" {
				return html.EscapeString(e.Level+": ") + logline.HTML(e.Message), true
			}
			return logline.HTML(e.Message), true
		}
	case schema.TypeShStarted:
		var e schema.ShStarted
		if json.Unmarshal(data, &e) == nil {
			return html.EscapeString("$ " + e.Cmd), true
		}
	case schema.TypeShFinished:
		var e schema.ShFinished
		if json.Unmarshal(data, &e) == nil {
			text := fmt.Sprintf("exit code %d", e.ExitCode)
			if e.Error != "" {
				text += ": " + e.Error
			}
			return html.EscapeString(text), true
		}
	case schema.TypeJobStarted:
		return "job started", true
	case schema.TypeJobFinished:
		var e schema.JobFinished
		if json.Unmarshal(data, &e) == nil {
			text := "job " + string(e.Outcome)
			if e.Error != "" {
				text += ": " + e.Error
			}
			return html.EscapeString(text), true
		}
	case schema.TypeRunStarted:
		var e schema.RunStarted
		if json.Unmarshal(data, &e) == nil {
			names := make([]string, len(e.Jobs))
			for i, j := range e.Jobs {
				names[i] = j.ID
			}
			return html.EscapeString("run started: jobs " + strings.Join(names, ", ")), true
		}
	case schema.TypeRunFinished:
		var e schema.RunFinished
		if json.Unmarshal(data, &e) == nil {
			text := "run finished: " + string(e.Outcome)
			if e.Error != "" {
				text += ": " + e.Error
			}
			return html.EscapeString(text), true
		}
	}
	return "", false
}
