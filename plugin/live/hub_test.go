package live

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
)

func startHub(t *testing.T) (*Hub, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	h := NewHub(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h, cancel, done
}

func lines(runID uint, from, to int64) []store.RunEvent {
	var out []store.RunEvent
	for s := from; s <= to; s++ {
		out = append(out, store.RunEvent{RunID: runID, Seq: s, Type: "sh_output", JobName: "test", Data: `{"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"x"}`})
	}
	return out
}

// receive reads n frames or fails after a deadline.
func receive(t *testing.T, s *Subscription, n int) []int64 {
	t.Helper()
	var seqs []int64
	timeout := time.After(10 * time.Second)
	for len(seqs) < n {
		select {
		case batch, ok := <-s.Frames():
			if !ok {
				t.Fatalf("subscription closed (reason %d) after seqs %v, want %d frames", s.Reason(), seqs, n)
			}
			for _, f := range batch.Frames {
				seqs = append(seqs, f.Seq)
			}
		case <-timeout:
			t.Fatalf("got seqs %v, want %d frames", seqs, n)
		}
	}
	return seqs
}

// waitClosed drains s until its channel closes and returns the reason and
// the number of frames it drained.
func waitClosed(t *testing.T, s *Subscription) (CloseReason, int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	n := 0
	for {
		select {
		case batch, ok := <-s.Frames():
			if !ok {
				return s.Reason(), n
			}
			n += len(batch.Frames)
		case <-timeout:
			t.Fatal("subscription is still open")
		}
	}
}

func TestHubDeliversInOrderToEverySubscriber(t *testing.T) {
	h, _, _ := startHub(t)
	a, err := h.Subscribe(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Subscribe(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := h.Subscribe(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}

	h.Publish(1, lines(1, 1, 3))
	h.Publish(1, lines(1, 4, 5))
	for name, s := range map[string]*Subscription{"a": a, "b": b} {
		got := receive(t, s, 5)
		for i, seq := range got {
			if seq != int64(i+1) {
				t.Errorf("subscriber %s frame %d has seq %d, want %d", name, i, seq, i+1)
			}
		}
	}
	select {
	case batch := <-other.Frames():
		t.Errorf("subscriber of run 2 got %d frames of run 1", len(batch.Frames))

	default:
	}
}

func TestHubDropsFullSubscriberOnly(t *testing.T) {
	h, _, _ := startHub(t)
	stuck, err := h.Subscribe(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := h.Subscribe(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}

	const n = (SubscriberBuffer + 10) * 10
	got := make(chan []int64)
	// The reader reports its newest seq after every batch, and the test
	// publishes the next batch only once the reader has the previous one,
	// so the reader never falls behind however the goroutines are
	// scheduled. The stuck subscriber fills up and must be the only one
	// dropped.
	progress := make(chan int64, SubscriberBuffer+10)
	go func() {
		var seqs []int64
		for batch := range reader.Frames() {
			for _, f := range batch.Frames {
				seqs = append(seqs, f.Seq)
			}
			if len(seqs) > 0 {
				progress <- seqs[len(seqs)-1]
			}
			if len(seqs) == n {
				break
			}
		}
		got <- seqs
	}()
	for s := int64(1); s <= n; s += 10 {
		h.Publish(1, lines(1, s, s+9))
		waitSeq(t, progress, s+9)
	}

	seqs := <-got
	if len(seqs) != n || seqs[n-1] != n {
		t.Errorf("reader got %d frames ending at %v, want %d", len(seqs), seqs[len(seqs)-1:], n)
	}
	reason, buffered := waitClosed(t, stuck)
	if reason != ReasonSlow {
		t.Errorf("stuck subscriber closed with reason %d, want ReasonSlow (%d)", reason, ReasonSlow)
	}
	if buffered != SubscriberBuffer*10 {
		t.Errorf("stuck subscriber had %d frames buffered, want %d batches of 10", buffered, SubscriberBuffer)
	}
	if v := h.Viewers(1); v != 1 {
		t.Errorf("Viewers = %d, want 1", v)
	}
}

func TestHubClosesFinishedRunAfterItsFrames(t *testing.T) {
	h, _, _ := startHub(t)
	s, err := h.Subscribe(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(7, lines(7, 1, 3))
	h.RunChanged(store.Run{ID: 7, State: store.RunActive})
	h.Publish(7, lines(7, 4, 4))
	h.RunChanged(store.Run{ID: 7, State: store.RunComplete})

	reason, n := waitClosed(t, s)
	if reason != ReasonFinished || n != 4 {
		t.Errorf("closed with reason %d after %d frames, want ReasonFinished (%d) after 4", reason, n, ReasonFinished)
	}
}

func TestHubShutdownClosesEverySubscriber(t *testing.T) {
	h, cancel, done := startHub(t)
	s, err := h.Subscribe(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done

	if reason, _ := waitClosed(t, s); reason != ReasonShutdown {
		t.Errorf("reason = %d, want ReasonShutdown (%d)", reason, ReasonShutdown)
	}
	if _, err := h.Subscribe(t.Context(), 1); !errors.Is(err, ErrHubClosed) {
		t.Errorf("Subscribe after shutdown: %v, want ErrHubClosed", err)
	}
	h.Publish(1, lines(1, 1, 1)) // must not block or queue
	h.Unsubscribe(s)
	if h.pendingEvents != 0 {
		t.Errorf("pending events after shutdown = %d, want 0", h.pendingEvents)
	}
}

func TestHubUnsubscribeClosesOnce(t *testing.T) {
	h, _, _ := startHub(t)
	s, err := h.Subscribe(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	h.Unsubscribe(s)
	h.Unsubscribe(s) // a second call must not close the channel again
	if reason, _ := waitClosed(t, s); reason != ReasonUnsubscribed {
		t.Errorf("reason = %d, want ReasonUnsubscribed (%d)", reason, ReasonUnsubscribed)
	}
}

// TestPublishOverflowMarksRun checks the bound on queued events: a hub
// that is not draining discards further batches and marks their run, and
// the next drain drops that run's viewers.
func TestPublishOverflowMarksRun(t *testing.T) {
	h := NewHub(nil)
	big := lines(3, 1, maxPendingEvents)
	h.Publish(3, big)
	h.Publish(3, lines(3, maxPendingEvents+1, maxPendingEvents+1))
	if h.pendingEvents != maxPendingEvents || !h.overflowed[3] {
		t.Fatalf("pending = %d, overflowed = %v; want %d pending and run 3 marked", h.pendingEvents, h.overflowed, maxPendingEvents)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.Run(ctx) }()
	s, err := h.Subscribe(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(3, lines(3, 1, 1))
	h.mu.Lock()
	h.overflowed[3] = true // as if this batch had overflowed too
	h.mu.Unlock()
	h.signal()
	if reason, _ := waitClosed(t, s); reason != ReasonOverflow {
		t.Errorf("reason = %d, want ReasonOverflow (%d)", reason, ReasonOverflow)
	}
}

// waitSeq reads progress until it reports seq or later, failing the test
// after a bounded wait.
func waitSeq(t *testing.T, progress <-chan int64, seq int64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-progress:
			if got >= seq {
				return
			}
		case <-deadline:
			t.Fatalf("reader did not receive seq %d within 10s", seq)
		}
	}
}

// TestHubWatchedFollowsSubscriptions checks the count that ingestion reads
// before it splits a batch into events: a run is watched as soon as a
// Subscribe call returns, and no longer once its last viewer left.
func TestHubWatchedFollowsSubscriptions(t *testing.T) {
	h, _, _ := startHub(t)
	if h.Watched(7) {
		t.Fatal("run 7 is watched before anyone subscribed")
	}
	a, err := h.Subscribe(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Subscribe(t.Context(), 7)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Watched(7) || h.Watched(8) {
		t.Fatalf("watched 7 = %v, 8 = %v after two subscriptions to 7; want true, false", h.Watched(7), h.Watched(8))
	}
	h.Unsubscribe(a)
	// Viewers waits for the hub goroutine, which has then handled the
	// unsubscription.
	if n := h.Viewers(7); n != 1 || !h.Watched(7) {
		t.Fatalf("after one of two left: %d viewers, watched %v; want 1, true", n, h.Watched(7))
	}
	h.Unsubscribe(b)
	if n := h.Viewers(7); n != 0 || h.Watched(7) {
		t.Fatalf("after both left: %d viewers, watched %v; want 0, false", n, h.Watched(7))
	}
}

// TestHubNotWatchedAfterShutdown stops the hub while a run has a viewer:
// from then on nothing is delivered, so the run counts as unwatched.
func TestHubNotWatchedAfterShutdown(t *testing.T) {
	h, cancel, done := startHub(t)
	if _, err := h.Subscribe(t.Context(), 7); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if h.Watched(7) {
		t.Error("run 7 is watched after the hub stopped")
	}
}
