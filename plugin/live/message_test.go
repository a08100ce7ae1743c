package live

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/plugin/store"
)

func TestNewMessage(t *testing.T) {
	tests := []struct {
		name string
		typ  string
		data string
		want *string
	}{
		{"output line with colour", "sh_output", `{"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":"\u001b[31mred\u001b[0m <x>"}`, ptr(`<span class="fg1">red</span> &lt;x&gt;`)},
		{"empty output line is shown", "sh_output", `{"type":"sh_output","job_id":"a","seq":1,"stream":"stdout","line":""}`, ptr("")},
		{"command", "sh_started", `{"type":"sh_started","job_id":"a","seq":1,"cmd":"echo <hi>"}`, ptr("$ echo &lt;hi&gt;")},
		{"exit code with error", "sh_finished", `{"type":"sh_finished","job_id":"a","seq":1,"exit_code":-1,"error":"killed"}`, ptr("exit code -1: killed")},
		{"warning log", "log", `{"type":"log","job_id":"a","level":"warn","message":"careful"}`, ptr("warn: careful")},
		{"job outcome", "job_finished", `{"type":"job_finished","job_id":"a","outcome":"failed","error":"step 1 exited with 2"}`, ptr("job failed: step 1 exited with 2")},
		{"run start lists jobs", "run_started", `{"type":"run_started","schema":1,"jobs":[{"id":"a","inputs":["octavo/push"]},{"id":"b","inputs":["a"]}]}`, ptr("run started: jobs a, b")},
		{"run outcome", "run_finished", `{"type":"run_finished","outcome":"pipeline_failure","error":"ci.star:3: boom"}`, ptr("run finished: pipeline_failure: ci.star:3: boom")},
		{"unknown type has no line", "future_thing", `{"type":"future_thing"}`, nil},
		{"damaged data is sent as a string", "sh_output", `{"type":`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMessage(store.RunEvent{Seq: 9, Type: tt.typ, Data: tt.data})
			if m.Seq != 9 {
				t.Errorf("Seq = %d, want 9", m.Seq)
			}
			if !json.Valid(m.Event) {
				t.Errorf("Event %s is not valid JSON", m.Event)
			}
			switch {
			case tt.want == nil && m.HTML != nil:
				t.Errorf("HTML = %q, want none", *m.HTML)
			case tt.want != nil && m.HTML == nil:
				t.Errorf("HTML is missing, want %q", *tt.want)
			case tt.want != nil && *m.HTML != *tt.want:
				t.Errorf("HTML = %q, want %q", *m.HTML, *tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestEncodeMessageReplacesInvalidUTF8(t *testing.T) {
	ev := store.RunEvent{Seq: 3, Type: "sh_output", Data: "{\"type\":\"sh_output\",\"job_id\":\"test\",\"line\":\"caf\xe9 \xff\"}"}
	b := EncodeMessage(ev)
	if !utf8.Valid(b) {
		t.Fatalf("EncodeMessage = %q, which is not UTF-8", b)
	}
	var m struct {
		Event struct {
			Line string `json:"line"`
		} `json:"event"`
		HTML string `json:"html"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("EncodeMessage = %q: %v", b, err)
	}
	if m.Event.Line != "caf\uFFFD \uFFFD" || m.HTML != "caf\uFFFD \uFFFD" {
		t.Errorf("line = %q, html = %q; want both %q", m.Event.Line, m.HTML, "caf\uFFFD \uFFFD")
	}
}
