package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/octavo-ci/octavo/plugin/store"
)

// Connection tuning. The values follow the gorilla/websocket chat example:
// pings go out well within the pong wait so a healthy viewer never times out.
const (
	// writeWait is the time allowed to write one message to a viewer.
	writeWait = 10 * time.Second
	// pongWait is how long a viewer may stay silent, pongs included.
	pongWait = 60 * time.Second
	// pingPeriod is how often the server pings; it must be below pongWait.
	pingPeriod = pongWait * 9 / 10
	// maxReadBytes bounds a message from a viewer. Viewers send nothing but
	// control frames, so anything larger is a misbehaving client.
	maxReadBytes = 512
	// replayPage is how many stored events one store query reads.
	replayPage = 1000
	// maxBatchesPerWrite bounds how many queued batches one write to a
	// viewer combines.
	maxBatchesPerWrite = 64
	// closeWait is how long the server waits for the viewer's reply to a
	// close frame before it closes the connection.
	closeWait = time.Second
)

// Close codes the server sends. A viewer reconnects with its last sequence
// number after any code but CloseNormalClosure.
const (
	// CodeFellBehind is sent to a viewer dropped for reading too slowly
	// (1013, "try again later").
	CodeFellBehind = websocket.CloseTryAgainLater
)

// Stream sends the events of runID with Seq > after to conn: first the stored
// ones, then live ones from the hub, in ascending Seq order with none
// repeated. It returns in four cases. When the run has reached a final state
// and every event was sent, it closes with a normal close frame. When the
// viewer falls behind, it closes with [CodeFellBehind]. When ctx or the hub
// ends, it closes with "going away". When the viewer goes away, it just
// returns. Stream owns conn,
// closes it, and runs exactly one reader goroutine beside itself as the only
// writer.
//
// NOTE: event frames are written straight to the underlying connection,
// already framed by the hub, so that one write carries a whole batch. That
// is safe because this goroutine is the connection's only writer: the
// reader's ping and close handlers are replaced by ones that leave replies
// to this goroutine, and gorilla/websocket keeps no state between complete
// messages.
func (h *Hub) Stream(ctx context.Context, conn *websocket.Conn, st *store.Store, runID uint, after int64) error {
	defer conn.Close()
	s := &streamer{hub: h, conn: conn, st: st, runID: runID, last: after, pings: make(chan string, 1), logger: h.logger.With("run_id", runID)}

	readDone := make(chan struct{})
	go s.readPump(readDone)
	s.readDone = readDone

	err := s.run(ctx)
	if errors.Is(err, errViewerGone) {
		return nil
	}
	return err
}

// errViewerGone ends a stream whose viewer closed or broke the connection.
var errViewerGone = errors.New("viewer went away")

type streamer struct {
	hub      *Hub
	conn     *websocket.Conn
	st       *store.Store
	runID    uint
	last     int64 // highest Seq sent so far
	readDone <-chan struct{}
	pings    chan string // payloads of pings the writer replies to with a pong
	logger   *slog.Logger
}

// readPump discards what the viewer sends and keeps the read deadline moving
// with each pong. It closes done when the connection fails or closes. It
// never writes: pongs are queued for the writer, and a close frame just ends
// the loop.
func (s *streamer) readPump(done chan<- struct{}) {
	defer close(done)
	s.conn.SetReadLimit(maxReadBytes)
	_ = s.conn.SetReadDeadline(time.Now().Add(pongWait))
	s.conn.SetPongHandler(func(string) error {
		return s.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	s.conn.SetPingHandler(func(payload string) error {
		select {
		case s.pings <- payload:
		default: // a pong is already due, and one pong replies to both
		}
		return nil
	})
	s.conn.SetCloseHandler(func(int, string) error { return nil })
	for {
		if _, _, err := s.conn.NextReader(); err != nil {
			return
		}
	}
}

func (s *streamer) run(ctx context.Context) error {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()

	// Catch up from the store before subscribing, so that a viewer of a
	// long log does not overflow its live buffer while it replays.
	if err := s.replay(ctx, 0, ping); err != nil {
		return err
	}

	sub, err := s.hub.Subscribe(ctx, s.runID)
	if errors.Is(err, ErrHubClosed) {
		return s.close(websocket.CloseGoingAway, "server is shutting down")
	}
	if err != nil {
		return s.close(websocket.CloseGoingAway, "server is shutting down")
	}
	defer s.hub.Unsubscribe(sub)

	// NOTE: the run's state is read after subscribing. If it is not final
	// yet, its final RunChanged comes later and closes sub; if it is, the
	// store already holds every event.
	run, found, err := s.st.PublicRun(ctx, s.runID)
	if err != nil {
		_ = s.close(websocket.CloseInternalServerErr, "reading the run failed")
		return fmt.Errorf("stream run %d: %w", s.runID, err)
	}
	if !found {
		return s.close(websocket.ClosePolicyViolation, "run not found")
	}
	if err := s.replay(ctx, 0, ping); err != nil {
		return err
	}
	if run.State.Final() {
		return s.close(websocket.CloseNormalClosure, "run finished")
	}

	for {
		select {
		case batch, ok := <-sub.Frames():
			if !ok {
				return s.subscriptionClosed(ctx, sub.Reason(), ping)
			}
			// Take what else is queued, so that a viewer that fell
			// behind catches up with fewer, larger writes.
			batches := []*Batch{batch}
			closed := false
		drain:
			for len(batches) < maxBatchesPerWrite {
				select {
				case more, ok := <-sub.Frames():
					if !ok {
						closed = true
						break drain
					}
					batches = append(batches, more)
				default:
					break drain
				}
			}
			if err := s.sendBatches(ctx, batches, ping); err != nil {
				return err
			}
			if closed {
				return s.subscriptionClosed(ctx, sub.Reason(), ping)
			}

		case <-ping.C:
			if err := s.ping(); err != nil {
				return err
			}

		case payload := <-s.pings:
			if err := s.pong(payload); err != nil {
				return err
			}

		case <-s.readDone:
			return errViewerGone

		case <-ctx.Done():
			return s.close(websocket.CloseGoingAway, "server is shutting down")
		}
	}
}

// sendBatches writes batches with one vectored write when they continue
// the last sent frame without a gap, and else one by one through sendBatch.
func (s *streamer) sendBatches(ctx context.Context, batches []*Batch, ping *time.Ticker) error {
	if len(batches) == 1 {
		return s.sendBatch(ctx, batches[0], ping)
	}
	next := s.last + 1
	wire := make(net.Buffers, 0, len(batches))
	for _, b := range batches {
		if len(b.Frames) == 0 || b.Frames[0].Seq != next {
			wire = nil
			break
		}
		wire = append(wire, b.Wire)
		next = b.Frames[len(b.Frames)-1].Seq + 1
	}
	if wire != nil {
		nc := s.conn.UnderlyingConn()
		_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := wire.WriteTo(nc); err != nil {
			return errViewerGone
		}
		s.last = next - 1
		return nil
	}

	for _, b := range batches {
		if err := s.sendBatch(ctx, b, ping); err != nil {
			return err
		}
	}
	return nil
}

// sendBatch writes the frames of batch that the viewer has not had yet: the
// whole batch in one write when it follows the last sent frame, else frame
// by frame after filling any gap from the store.
func (s *streamer) sendBatch(ctx context.Context, batch *Batch, ping *time.Ticker) error {
	if len(batch.Frames) == 0 {
		return nil
	}
	if batch.Frames[0].Seq == s.last+1 {
		if err := s.writeRaw(batch.Wire); err != nil {
			return err
		}
		s.last = batch.Frames[len(batch.Frames)-1].Seq
		return nil
	}

	for _, f := range batch.Frames {
		if f.Seq <= s.last {
			continue // already sent from the store
		}
		if f.Seq > s.last+1 {
			// Fill a gap from the store; a Seq that the store does not
			// hold either was never written.
			if err := s.replay(ctx, f.Seq, ping); err != nil {
				return err
			}
		}
		if err := s.writeRaw(f.Wire); err != nil {
			return err
		}
		s.last = f.Seq
	}
	return nil
}

func (s *streamer) subscriptionClosed(ctx context.Context, reason CloseReason, ping *time.Ticker) error {
	switch reason {
	case ReasonFinished:
		if err := s.replay(ctx, 0, ping); err != nil {
			return err
		}
		return s.close(websocket.CloseNormalClosure, "run finished")
	case ReasonSlow, ReasonOverflow:
		s.logger.Debug("closing slow viewer", "last_seq", s.last)
		return s.close(CodeFellBehind, "viewer fell behind; reconnect with after=last seq")
	default:
		return s.close(websocket.CloseGoingAway, "server is shutting down")
	}
}

// replay sends stored events after s.last, a page at a time, stopping before
// Seq before when before is positive. Between pages it sends due pings and
// returns if the viewer went away.
func (s *streamer) replay(ctx context.Context, before int64, ping *time.Ticker) error {
	for {
		events, err := s.st.PageRunEvents(ctx, store.EventPage{RunID: s.runID, After: s.last, Before: before, Limit: replayPage})
		if err != nil {
			if ctx.Err() != nil {
				return s.close(websocket.CloseGoingAway, "server is shutting down")
			}
			_ = s.close(websocket.CloseInternalServerErr, "reading events failed")
			return fmt.Errorf("replay run %d: %w", s.runID, err)
		}
		var wire []byte
		for _, ev := range events {
			wire = append(wire, textFrame(EncodeMessage(ev))...)
		}
		if len(events) > 0 {
			if err := s.writeRaw(wire); err != nil {
				return err
			}
			s.last = events[len(events)-1].Seq
		}
		if len(events) < replayPage {
			return nil
		}

		select {
		case <-s.readDone:
			return errViewerGone
		case <-ping.C:
			if err := s.ping(); err != nil {
				return err
			}
		default:
		}
	}
}

// writeRaw writes complete websocket frames to the underlying connection.
func (s *streamer) writeRaw(frames []byte) error {
	nc := s.conn.UnderlyingConn()
	_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
	if _, err := nc.Write(frames); err != nil {
		return errViewerGone
	}
	return nil
}

func (s *streamer) ping() error {
	if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
		return errViewerGone
	}
	return nil
}

func (s *streamer) pong(payload string) error {
	if err := s.conn.WriteControl(websocket.PongMessage, []byte(payload), time.Now().Add(writeWait)); err != nil {
		return errViewerGone
	}
	return nil
}

// close sends a close frame and waits briefly for the viewer to answer, so
// that the viewer reads the close code instead of a reset connection. The
// wait ends early if the viewer has already gone.
func (s *streamer) close(code int, text string) error {
	msg := websocket.FormatCloseMessage(code, text)
	if err := s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait)); err != nil {
		return errViewerGone
	}
	select {
	case <-s.readDone:
	case <-time.After(closeWait):
	}
	return nil
}
