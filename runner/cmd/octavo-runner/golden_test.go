package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// timestamp matches the at_ms field, which is the only part of an event
// that changes between runs of a deterministic pipeline.
var timestamp = regexp.MustCompile(`"at_ms":[0-9]+`)

var update = flag.Bool("update", false, "rewrite golden files in ../../testdata from the current output")

// TestRunGoldenEventStream compares the whole event stream of
// testdata/golden.star, with timestamps set to 0, to a golden file.
func TestRunGoldenEventStream(t *testing.T) {
	res := runPipeline(t, runSpec{
		pipeline: readTestdata(t, "golden.star"),
		push:     map[string]any{"sha": "1111111111111111111111111111111111111111", "ref": "refs/heads/main", "branch": "main"},
		args:     []string{"--parallel", "1"},
	})
	if res.exit != 0 {
		t.Fatalf("exit %d; stderr:\n%s", res.exit, res.stderr)
	}

	var got bytes.Buffer
	for _, line := range res.lines {
		got.Write(timestamp.ReplaceAll(line, []byte(`"at_ms":0`)))
		got.WriteByte('\n')
	}

	golden := filepath.Join("..", "..", "testdata", "golden.events.jsonl")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("event stream differs from %s (-want +got):\n%s", golden, diff)
	}
}
