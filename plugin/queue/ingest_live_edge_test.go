package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/live"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// TestIngestEdgeViewerJoinsMidRun runs the real live hub and subscribes
// while a run is printing. The run was unwatched until then, so its read
// blocks were being reused. The viewer must get every event after the
// ones already stored when it subscribed, each exactly as stored, which
// also shows that no block the hub still reads was reused. The events
// after the subscription stay below the hub's queue limit of 100,000, so
// the hub keeps the viewer.
func TestIngestEdgeViewerJoinsMidRun(t *testing.T) {
	const before, after = 20_000, 60_000
	hub := startLiveHub(t)

	gate := filepath.Join(t.TempDir(), "viewer-subscribed")
	// The script prints `before` output lines, waits up to ten seconds for
	// the gate file that the test creates once subscribed, then prints
	// `after` more.
	awk := func(from, to int) string {
		return fmt.Sprintf(`awk 'BEGIN { for (i = %d; i <= %d; i++) printf "{\"at_ms\":%%.0f,\"type\":\"sh_output\",\"job_id\":\"test\",\"seq\":1,\"stream\":\"stdout\",\"line\":\"line %%d\"}\n", 1764850000000 + int(i / 1000), i }'`+"\n", from, to)
	}
	script := printLines(`\n`, happyEvents[:3]...) + awk(1, before) +
		fmt.Sprintf("i=0\nwhile [ ! -e %s ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n", shellQuote(gate)) +
		awk(before+1, before+after) + printLines(`\n`, happyEvents[4], happyEvents[5], runSuccess)
	total := int64(3 + before + after + 3)

	h := newHarness(t, fakeRunner(t), func(o *Options) { o.Live = hub })
	h.start()
	id := h.push("main", map[string]string{workspace.PipelineFile: script}).RunID
	h.waitRun(id, func(r *store.Run) bool { return r.LastSeq >= 3+before || r.State.Final() })

	sub, err := hub.Subscribe(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Unsubscribe(sub)
	r, err := store.GetRun(t.Context(), h.st.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	storedAtSubscribe := r.LastSeq
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	var frames []live.Message
	for batch := range sub.Frames() {
		for _, f := range batch.Frames {
			var m live.Message
			if err := json.Unmarshal(f.Data, &m); err != nil {
				t.Fatalf("frame %d is not a message: %v", f.Seq, err)
			}
			frames = append(frames, m)
		}
	}
	if sub.Reason() != live.ReasonFinished {
		t.Errorf("subscription closed with reason %d, want %d (run finished)", sub.Reason(), live.ReasonFinished)
	}

	r = h.waitFinal(id)
	if r.State != store.RunComplete || r.LastSeq != total {
		t.Fatalf("run = %s with last_seq %d, want complete with %d", r.State, r.LastSeq, total)
	}
	if len(frames) == 0 {
		t.Fatal("the viewer got no frames")
	}
	if first := frames[0].Seq; first > storedAtSubscribe+1 {
		t.Errorf("first frame has seq %d, but only %d events were stored at subscription: events %d to %d are lost", first, storedAtSubscribe, storedAtSubscribe+1, first-1)
	}
	if last := frames[len(frames)-1].Seq; last != total {
		t.Errorf("last frame has seq %d, want %d", last, total)
	}

	stored, err := store.EventsAfter(t.Context(), h.st.DB, id, frames[0].Seq-1, len(frames))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(frames) {
		t.Fatalf("read %d stored events for %d frames", len(stored), len(frames))
	}
	mismatches := 0
	for i, m := range frames {
		if i > 0 && m.Seq != frames[i-1].Seq+1 {
			t.Errorf("frame %d has seq %d after seq %d, want consecutive seqs", i, m.Seq, frames[i-1].Seq)
		}
		if m.Seq != stored[i].Seq || string(m.Event) != stored[i].Data {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("frame %d = seq %d %.120s, want seq %d %.120s as stored", i, m.Seq, m.Event, stored[i].Seq, stored[i].Data)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of %d frames differ from the stored events", mismatches, len(frames))
	}
	if !strings.Contains(string(frames[len(frames)-1].Event), `"type":"run_finished"`) {
		t.Errorf("last frame = %s, want the run_finished event", frames[len(frames)-1].Event)
	}
}

// startLiveHub runs a live hub until the test ends.
func startLiveHub(t *testing.T) *live.Hub {
	t.Helper()
	hub := live.NewHub(nil)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		<-done
	})
	return hub
}
