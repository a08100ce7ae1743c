// Package live fans committed run events out to the viewers of each run: the
// hub that the ingestion path publishes to, and the subscriptions that the
// websocket handler of the status page reads from.
package live

import (
	"context"
	"log/slog"
	"sync"

	"github.com/octavo-ci/octavo/plugin/notify"
	"github.com/octavo-ci/octavo/plugin/store"
)

// Tuning constants of the hub.
const (
	// SubscriberBuffer is how many batches (one per Publish call) a
	// subscriber may fall behind before the hub drops it. Frames are shared
	// between subscribers, so a full buffer costs only slice headers. A
	// dropped viewer reconnects and resumes from the store.
	SubscriberBuffer = 256

	// maxPendingEvents bounds the events queued between Publish and the
	// hub goroutine. If the hub falls this far behind, Publish discards the
	// batch and the hub drops that run's subscribers, who then resume from
	// the store, instead of letting memory grow or ingestion wait.
	maxPendingEvents = 100_000
)

// CloseReason is the reason the hub closed a subscription's frame channel.
type CloseReason int

// Close reasons.
const (
	// ReasonFinished: the run reached a final state; every frame of the run
	// was delivered before the channel closed.
	ReasonFinished CloseReason = iota + 1
	// ReasonSlow: the subscriber's buffer was full, so frames were lost.
	ReasonSlow
	// ReasonOverflow: the hub itself fell behind and discarded events.
	ReasonOverflow
	// ReasonShutdown: the hub's context ended.
	ReasonShutdown
	// ReasonUnsubscribed: the subscriber called [Hub.Unsubscribe].
	ReasonUnsubscribed
)

// Frame is one event ready to send to viewers. Data is the JSON text of
// [Message]; Wire is the same text as one complete websocket text frame,
// built once for all connections. Frames are shared between subscribers
// and must not be modified.
type Frame struct {
	Seq  int64
	Data []byte
	Wire []byte
}

// Batch is the frames of one Publish call, in ascending Seq order. Wire is
// the concatenation of their Wire fields, so that a viewer that needs the
// whole batch gets it with one write.
type Batch struct {
	Frames []Frame
	Wire   []byte
}

// Subscription receives the frames of one run. Only the hub goroutine sends
// on or closes its channel.
type Subscription struct {
	runID  uint
	frames chan *Batch
	ready  chan struct{}
	reason CloseReason // written by the hub before it closes frames
}

// Frames returns the channel of live frames, in batches as they were
// published and in ascending Seq order. It is closed when the subscription
// ends, and then [Subscription.Reason] returns why. Batches are shared with other
// subscribers and must not be modified.
func (s *Subscription) Frames() <-chan *Batch { return s.frames }

// Reason returns why the frame channel was closed. It must only be called
// after a receive from [Subscription.Frames] reported the channel closed.
func (s *Subscription) Reason() CloseReason { return s.reason }

// Hub fans published events out to subscriptions. One goroutine, the one
// running [Hub.Run], owns the set of subscriptions: it alone adds, removes,
// sends to and closes them. Publish and RunChanged only queue work for it and
// never block on viewers.
type Hub struct {
	logger *slog.Logger

	register   chan *Subscription
	unregister chan *Subscription
	count      chan countRequest
	wake       chan struct{}
	done       chan struct{}

	mu            sync.Mutex
	pending       []update
	pendingEvents int
	overflowed    map[uint]bool
	// watched counts the subscriptions of each run with any, for
	// [Hub.Watched]. Only the hub goroutine changes it.
	watched map[uint]int
}

type countRequest struct {
	runID uint
	reply chan int
}

// update is one call of Publish or RunChanged waiting for the hub goroutine.
type update struct {
	runID  uint
	events []store.RunEvent
	run    *store.Run
}

var _ notify.LiveSink = (*Hub)(nil)

// NewHub returns a hub that logs to logger as it is (callers add the
// component attribute); nil discards the logs. Nothing is delivered until
// [Hub.Run] is running.
func NewHub(logger *slog.Logger) *Hub {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		logger:     logger,
		register:   make(chan *Subscription),
		unregister: make(chan *Subscription),
		count:      make(chan countRequest),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		overflowed: make(map[uint]bool),
		watched:    make(map[uint]int),
	}
}

// Watched reports whether runID has subscriptions. A Subscribe call that
// returned before Watched was called is counted. Once Run has returned, no
// run is watched.
func (h *Hub) Watched(runID uint) bool {
	if h.closed() {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.watched[runID] > 0
}

// countViewer adds delta to the subscriptions of runID in watched.
func (h *Hub) countViewer(runID uint, delta int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := h.watched[runID] + delta; n > 0 {
		h.watched[runID] = n
	} else {
		delete(h.watched, runID)
	}
}

// Publish queues events of one run that were just committed, in ascending
// Seq order. It never waits for viewers. It must be called after the commit,
// so that a viewer that subscribes and then reads the store sees every event
// either in the store or live.
func (h *Hub) Publish(runID uint, events []store.RunEvent) {
	if len(events) == 0 || h.closed() {
		return
	}
	batch := make([]store.RunEvent, len(events))
	copy(batch, events)

	h.mu.Lock()
	if h.pendingEvents+len(batch) > maxPendingEvents {
		h.overflowed[runID] = true
	} else {
		h.pending = append(h.pending, update{runID: runID, events: batch})
		h.pendingEvents += len(batch)
	}
	h.mu.Unlock()
	h.signal()
}

// RunChanged queues a committed change of a run. When the run is in a final
// state, the hub closes its subscriptions with [ReasonFinished] after
// delivering every frame published before.
func (h *Hub) RunChanged(run store.Run) {
	if h.closed() {
		return
	}
	h.mu.Lock()
	h.pending = append(h.pending, update{runID: run.ID, run: &run})
	h.mu.Unlock()
	h.signal()
}

func (h *Hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *Hub) closed() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// Subscribe registers a subscription for runID and returns once the hub
// goroutine has added it, so every event published after Subscribe returns
// reaches it. The caller must call [Hub.Unsubscribe] when done. It returns
// ctx's error if ctx ends first, and [ErrHubClosed] once Run has returned.
func (h *Hub) Subscribe(ctx context.Context, runID uint) (*Subscription, error) {
	s := &Subscription{
		runID:  runID,
		frames: make(chan *Batch, SubscriberBuffer),
		ready:  make(chan struct{}),
	}
	select {
	case h.register <- s:
	case <-h.done:
		return nil, ErrHubClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-s.ready:
		return s, nil
	case <-h.done:
		return nil, ErrHubClosed
	}
}

// Unsubscribe removes s and closes its channel, unless the hub already did.
// It is safe to call more than once and after Run has returned.
func (h *Hub) Unsubscribe(s *Subscription) {
	select {
	case h.unregister <- s:
	case <-h.done:
	}
}

// Viewers returns the number of subscriptions of runID. It waits for the
// hub goroutine, so it blocks until Run is running, and returns 0 once Run
// has returned.
func (h *Hub) Viewers(runID uint) int {
	req := countRequest{runID: runID, reply: make(chan int, 1)}
	select {
	case h.count <- req:
		return <-req.reply
	case <-h.done:
		return 0
	}
}

// Run delivers queued events until ctx ends, then closes every subscription
// with [ReasonShutdown] and returns nil. It must be called exactly once.
func (h *Hub) Run(ctx context.Context) error {
	runs := make(map[uint]map[*Subscription]struct{})

	drop := func(s *Subscription, reason CloseReason) {
		subs := runs[s.runID]
		if _, ok := subs[s]; !ok {
			return
		}
		delete(subs, s)
		if len(subs) == 0 {
			delete(runs, s.runID)
		}
		h.countViewer(s.runID, -1)
		s.reason = reason
		close(s.frames)
	}

	defer func() {
		// NOTE: done is closed before the channels, so Subscribe and
		// Unsubscribe stop waiting on the hub before it goes away.
		close(h.done)
		for _, subs := range runs {
			for s := range subs {
				s.reason = ReasonShutdown
				close(s.frames)
			}
		}
		h.logger.Info("live hub stopped")
	}()

	for {
		select {
		case <-ctx.Done():
			return nil

		case s := <-h.register:
			if runs[s.runID] == nil {
				runs[s.runID] = make(map[*Subscription]struct{})
			}
			runs[s.runID][s] = struct{}{}
			h.countViewer(s.runID, 1)
			close(s.ready)

		case s := <-h.unregister:
			drop(s, ReasonUnsubscribed)

		case req := <-h.count:
			req.reply <- len(runs[req.runID])

		case <-h.wake:
			h.mu.Lock()
			batch, overflowed := h.pending, h.overflowed
			h.pending, h.pendingEvents = nil, 0
			h.overflowed = make(map[uint]bool)
			h.mu.Unlock()

			for runID := range overflowed {
				n := len(runs[runID])
				for s := range runs[runID] {
					drop(s, ReasonOverflow)
				}
				h.logger.Error("live hub fell behind, dropped viewers", "run_id", runID, "viewers", n)
			}
			for _, u := range batch {
				h.deliver(runs[u.runID], u, drop)
			}
		}
	}
}

// deliver sends one update to the subscriptions of its run. Each event is
// encoded once, only when someone watches the run, and each subscription
// gets one channel send per batch.
func (h *Hub) deliver(subs map[*Subscription]struct{}, u update, drop func(*Subscription, CloseReason)) {
	if len(subs) == 0 {
		return
	}
	if u.run != nil {
		if u.run.State.Final() {
			for s := range subs {
				drop(s, ReasonFinished)
			}
		}
		return
	}

	batch := &Batch{Frames: make([]Frame, len(u.events))}
	size := 0
	for i, ev := range u.events {
		batch.Frames[i] = newFrame(ev)
		size += len(batch.Frames[i].Wire)
	}
	batch.Wire = make([]byte, 0, size)
	for _, f := range batch.Frames {
		batch.Wire = append(batch.Wire, f.Wire...)
	}

	for s := range subs {
		select {
		case s.frames <- batch:
		default:
			h.logger.Debug("dropped slow viewer", "run_id", u.runID, "seq", batch.Frames[0].Seq)
			drop(s, ReasonSlow)
		}
	}
}

func newFrame(ev store.RunEvent) Frame {
	data := EncodeMessage(ev)
	return Frame{Seq: ev.Seq, Data: data, Wire: textFrame(data)}
}
