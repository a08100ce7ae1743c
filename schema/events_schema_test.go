package schema_test

import (
	"encoding/json"
	"testing"

	"github.com/octavo-ci/octavo/schema"
	"github.com/octavo-ci/octavo/schema/schematest"
)

func TestEventsSchemaAcceptsEvents(t *testing.T) {
	sch, err := schematest.Compile("events.schema.json")
	if err != nil {
		t.Fatal(err)
	}

	env := func(ty schema.Type) schema.Envelope { return schema.Envelope{AtMs: 1764850000000, Type: ty} }
	events := []any{
		schema.RunStarted{Envelope: env(schema.TypeRunStarted), Schema: schema.Version, Jobs: []schema.JobNode{
			{ID: "test", Inputs: []string{"octavo/push"}},
			{ID: "lint", Inputs: []string{"test"}, AllowFailure: true},
		}},
		schema.RunStarted{Envelope: env(schema.TypeRunStarted), Schema: schema.Version, Jobs: []schema.JobNode{}},
		schema.JobStarted{Envelope: env(schema.TypeJobStarted), JobID: "test"},
		schema.ShStarted{Envelope: env(schema.TypeShStarted), JobID: "test", Seq: 1, Cmd: "go test ./..."},
		schema.ShOutput{Envelope: env(schema.TypeShOutput), JobID: "test", Seq: 1, Stream: schema.Stderr, Line: ""},
		schema.ShFinished{Envelope: env(schema.TypeShFinished), JobID: "test", Seq: 1, ExitCode: -1, Error: "timed out after 1s"},
		schema.Log{Envelope: env(schema.TypeLog), Level: schema.LevelWarn, Message: "secret \"x\" is shorter than 4 bytes"},
		schema.Log{Envelope: env(schema.TypeLog), JobID: "test", Message: "hello"},
		schema.JobFinished{Envelope: env(schema.TypeJobFinished), JobID: "test", Outcome: schema.JobSucceeded,
			Outputs: map[string]any{"artifact": "out/app", "n": 3}},
		schema.JobFinished{Envelope: env(schema.TypeJobFinished), JobID: "lint", Outcome: schema.JobSkipped, Error: "input job \"test\" failed"},
		schema.RunFinished{Envelope: env(schema.TypeRunFinished), Outcome: schema.RunPipelineFailure, Error: ".octavo/ci.star:3: job \"a\": dependency cycle a -> a"},
	}
	for _, ev := range events {
		text, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := schematest.ValidateJSON(sch, text); err != nil {
			t.Errorf("event %s rejected: %v", text, err)
		}
	}
}

func TestEventsSchemaRejectsMalformedEvents(t *testing.T) {
	sch, err := schematest.Compile("events.schema.json")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		line string
	}{
		{"missing type", `{"at_ms":1}`},
		{"unknown type", `{"at_ms":1,"type":"job_paused","job_id":"a"}`},
		{"negative timestamp", `{"at_ms":-1,"type":"job_started","job_id":"a"}`},
		{"job id with a slash", `{"at_ms":1,"type":"job_started","job_id":"a/b"}`},
		{"step sequence zero", `{"at_ms":1,"type":"sh_started","job_id":"a","seq":0,"cmd":"true"}`},
		{"unknown stream", `{"at_ms":1,"type":"sh_output","job_id":"a","seq":1,"stream":"stdin","line":"x"}`},
		{"output without line", `{"at_ms":1,"type":"sh_output","job_id":"a","seq":1,"stream":"stdout"}`},
		{"unknown job outcome", `{"at_ms":1,"type":"job_finished","job_id":"a","outcome":"cancelled"}`},
		{"unknown run outcome", `{"at_ms":1,"type":"run_finished","outcome":"failure"}`},
		{"extra field", `{"at_ms":1,"type":"run_finished","outcome":"success","exit":0}`},
		{"job graph with empty inputs", `{"at_ms":1,"type":"run_started","schema":1,"jobs":[{"id":"a","inputs":[]}]}`},
		{"newer schema version", `{"at_ms":1,"type":"run_started","schema":2,"jobs":[]}`},
		{"unknown log level", `{"at_ms":1,"type":"log","level":"debug","message":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := schematest.ValidateJSON(sch, []byte(tt.line)); err == nil {
				t.Errorf("line %s accepted, want a validation error", tt.line)
			}
		})
	}
}

func TestFilesEmbedsEverySchema(t *testing.T) {
	entries, err := schema.Files.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Name() == "events.schema.json" {
			found = true
		}
	}
	if !found {
		t.Errorf("schema.Files has %d entries without events.schema.json", len(entries))
	}
}
