package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/octavo-ci/octavo/plugin/live"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/uitest"
)

// dialLive opens the live websocket of a run with ?after=after.
func (e *testEnv) dialLive(t testing.TB, runID uint, after int64, header http.Header) *websocket.Conn {
	t.Helper()
	conn, resp, err := e.tryDialLive(t, runID, after, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial live run %d: %v (status %d)", runID, err, status)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func (e *testEnv) tryDialLive(t testing.TB, runID uint, after int64, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.base, "http") + "api/v1/runs/" + uitoa(runID) + "/live?after=" + strconv.FormatInt(after, 10)
	return websocket.DefaultDialer.DialContext(t.Context(), u, header)
}

type liveMessage struct {
	Seq   int64           `json:"seq"`
	Event json.RawMessage `json:"event"`
	HTML  *string         `json:"html"`
}

// readSeqs reads n messages and returns their sequence numbers and HTML.
func readSeqs(t testing.TB, conn *websocket.Conn, n int) ([]int64, []string) {
	t.Helper()
	seqs := make([]int64, 0, n)
	htmls := make([]string, 0, n)
	for len(seqs) < n {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("read message %d of %d: %v (got seqs %v)", len(seqs)+1, n, err, seqs)
		}
		var m liveMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if len(m.Event) == 0 || m.Event[0] != '{' {
			t.Fatalf("message %s has no event object", data)
		}
		h := ""
		if m.HTML != nil {
			h = *m.HTML
		}
		seqs = append(seqs, m.Seq)
		htmls = append(htmls, h)
	}
	return seqs, htmls
}

// wantClose reads until the server's close frame and checks its code.
func wantClose(t testing.TB, conn *websocket.Conn, code int) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := conn.ReadMessage()
	if err == nil {
		t.Fatalf("got message %s, want close code %d", data, code)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("read: %v, want close code %d", err, code)
	}
	if ce.Code != code {
		t.Fatalf("close code = %d (%s), want %d", ce.Code, ce.Text, code)
	}
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestLiveReplaysThenStreams(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "stored ", 3)...)

	conn := e.dialLive(t, run.ID, 0, nil)
	seqs, _ := readSeqs(t, conn, 3)
	if !equalSeqs(seqs, seqRange(1, 3)) {
		t.Fatalf("replayed seqs = %v, want 1..3", seqs)
	}

	// Identical consecutive lines are real output and arrive twice.
	e.hub.Publish(run.ID, uitest.AddEvents(t, e.store, run.ID, uitest.Line("test", "same"), uitest.Line("test", "same")))
	seqs, htmls := readSeqs(t, conn, 2)
	if !equalSeqs(seqs, seqRange(4, 5)) || htmls[0] != "same" || htmls[1] != "same" {
		t.Fatalf("live seqs = %v with html %q, want 4..5 with \"same\" twice", seqs, htmls)
	}

	e.hub.RunChanged(uitest.SetRunState(t, e.store, run, store.RunComplete))
	wantClose(t, conn, websocket.CloseNormalClosure)
}

func TestLiveResumesAfterDroppedConnection(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	e.hub.Publish(run.ID, uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "a", 5)...))

	first := e.dialLive(t, run.ID, 0, nil)
	seqs, _ := readSeqs(t, first, 3)
	if !equalSeqs(seqs, seqRange(1, 3)) {
		t.Fatalf("first connection seqs = %v, want 1..3", seqs)
	}
	_ = first.UnderlyingConn().Close() // drop without a close handshake

	// Lines written while the viewer is away.
	e.hub.Publish(run.ID, uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "b", 5)...))

	second := e.dialLive(t, run.ID, seqs[len(seqs)-1], nil)
	got, _ := readSeqs(t, second, 7)
	if !equalSeqs(got, seqRange(4, 10)) {
		t.Fatalf("resumed seqs = %v, want 4..10", got)
	}
	e.hub.Publish(run.ID, uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "c", 2)...))
	got, _ = readSeqs(t, second, 2)
	if !equalSeqs(got, seqRange(11, 12)) {
		t.Fatalf("live seqs after resume = %v, want 11..12", got)
	}
}

func TestLiveFinishedRunReplaysAndCloses(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunComplete, "", time.Minute)
	uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "x", 5)...)

	conn := e.dialLive(t, run.ID, 2, nil)
	seqs, _ := readSeqs(t, conn, 3)
	if !equalSeqs(seqs, seqRange(3, 5)) {
		t.Fatalf("seqs = %v, want 3..5", seqs)
	}
	wantClose(t, conn, websocket.CloseNormalClosure)
}

// TestLiveFillsGapFromStore covers events committed but not published
// (or published before the viewer subscribed): the viewer gets them from the
// store before the next live one.
func TestLiveFillsGapFromStore(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "a", 2)...)

	conn := e.dialLive(t, run.ID, 0, nil)
	readSeqs(t, conn, 2)
	uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "unpublished", 2)...)
	e.hub.Publish(run.ID, uitest.AddEvents(t, e.store, run.ID, uitest.Line("test", "published")))

	seqs, _ := readSeqs(t, conn, 3)
	if !equalSeqs(seqs, seqRange(3, 5)) {
		t.Fatalf("seqs = %v, want 3..5", seqs)
	}
}

func TestLiveDropsSlowViewerOnly(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)

	fast := e.dialLive(t, run.ID, 0, nil)
	// The slow viewer's receive buffer is fixed at 256 KiB, so that the
	// kernel's buffer autotuning cannot absorb the whole test. It stays
	// above the loopback MSS (64 KiB), below which Linux stalls the
	// connection instead of advertising a smaller window.
	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = conn.(*net.TCPConn).SetReadBuffer(256 << 10)
		}
		return conn, err
	}}
	slow, _, err := dialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(e.base, "http")+"api/v1/runs/"+uitoa(run.ID)+"/live", nil)
	if err != nil {
		t.Fatalf("dial slow viewer: %v", err)
	}
	defer slow.Close()
	waitViewers(t, e, run.ID, 2)

	// Enough output to fill the server's send buffer (at most 4 MiB on
	// Linux by default) and then the slow viewer's frame buffer. The events
	// are only published, so the store holds none and nothing can be filled
	// in from it.
	const n = 6000
	line := strings.Repeat("x", 4096)
	events := make([]store.RunEvent, n)
	for i := range events {
		events[i] = uitest.Line("test", line)
		events[i].RunID = run.ID
		events[i].Seq = int64(i + 1)
	}
	// One event per Publish, as ingestion does for a slow trickle, so the
	// slow viewer's buffer of batches fills early. The publisher stays
	// within 100 events of the fast viewer, so only the slow one can fall
	// behind however slow this machine is.
	var fastSeen atomic.Int64
	go func() {
		for i := 0; i < n; i++ {
			for int64(i)-fastSeen.Load() > 100 {
				time.Sleep(100 * time.Microsecond)
			}
			e.hub.Publish(run.ID, events[i:i+1])
		}
	}()

	for i := 1; i <= n; i++ {
		seqs, _ := readSeqs(t, fast, 1)
		if seqs[0] != int64(i) {
			t.Fatalf("fast viewer message %d has seq %d, want %d", i, seqs[0], i)
		}
		fastSeen.Store(int64(i))
	}

	// The slow viewer gets what was buffered for it and then the close code
	// that asks it to reconnect. If the server's write deadline ran out
	// first, it gets a closed connection instead.
	_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	var last int64
	for {
		_, data, err := slow.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			t.Logf("slow viewer stopped after seq %d: %v", last, err)
			if !errors.As(err, &ce) || (ce.Code != live.CodeFellBehind && ce.Code != websocket.CloseAbnormalClosure) {
				t.Fatalf("slow viewer read: %v, want close code %d or a closed connection", err, live.CodeFellBehind)
			}
			break
		}
		var m liveMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Seq != last+1 {
			t.Fatalf("slow viewer seq %d after %d, want consecutive", m.Seq, last)
		}
		last = m.Seq
	}
	if last >= n {
		t.Errorf("slow viewer received all %d events, want it dropped before the end", n)
	}
}

// waitViewers polls until the hub has n subscriptions for runID.
func waitViewers(t testing.TB, e *testEnv, runID uint, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if e.hub.Viewers(runID) >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("hub has %d viewers of run %d, want %d", e.hub.Viewers(runID), runID, n)
}

func TestLiveOriginCheck(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunComplete, "", time.Minute)

	_, resp, err := e.tryDialLive(t, run.ID, 0, http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("dial from a foreign origin: err %v, response %v; want 403", err, resp)
	}
	conn := e.dialLive(t, run.ID, 0, http.Header{"Origin": {e.srv.URL}})
	wantClose(t, conn, websocket.CloseNormalClosure)
}

func TestCheckOrigin(t *testing.T) {
	public, _ := urlParse("https://ci.example.com/ci/")
	u := &UI{publicURL: public, origins: map[string]bool{"https://other.example": true, "dev.local:8080": true}}
	tests := []struct {
		name   string
		origin string
		want   bool
	}{
		{"no origin header", "", true},
		{"public URL origin", "https://ci.example.com", true},
		{"public URL origin in upper case", "https://CI.example.com", true},
		{"public host over plain http", "http://ci.example.com", false},
		{"allowed origin", "https://other.example", true},
		{"allowed bare host with any scheme", "http://dev.local:8080", true},
		{"foreign origin", "https://evil.example", false},
		{"malformed origin", "::::", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://ci.example.com/ci/api/v1/runs/1/live", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := u.checkOrigin(r); got != tt.want {
				t.Errorf("checkOrigin(%q) = %v, want %v", tt.origin, got, tt.want)
			}
		})
	}
}

// TestLiveRepliesToPing checks the server's own ping handler, which queues
// the pong for the writer instead of writing from the reader.
func TestLiveRepliesToPing(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	conn := e.dialLive(t, run.ID, 0, nil)
	waitViewers(t, e, run.ID, 1)

	pongs := make(chan string, 1)
	conn.SetPongHandler(func(payload string) error {
		pongs <- payload
		return nil
	})
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := conn.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("send ping: %v", err)
	}
	select {
	case got := <-pongs:
		if got != "hello" {
			t.Errorf("pong payload = %q, want %q", got, "hello")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong within 10s")
	}
}
