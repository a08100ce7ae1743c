package plugin

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestLiveWebsocketThroughServer opens the live log websocket through the
// server's whole handler, request logging included. The logging wrapper
// once hid the connection's http.Hijacker, so every upgrade failed with a
// 500 in octavo serve while the status page's own tests passed.
func TestLiveWebsocketThroughServer(t *testing.T) {
	s, _ := newTestServer(t, nil)
	start(t, s)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	repo := newForgeRepo(t, "acme/app")
	id := pushHook(t, s.Handler(), "/hooks", repo, "refs/heads/main", "add pipeline", map[string]string{".octavo/ci.star": helloPipeline})
	waitRun(t, s, id)

	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/runs/" + strconv.FormatUint(uint64(id), 10) + "/live?after=0"
	// The page's origin is the public URL's, which defaults to the
	// listen address.
	header := http.Header{"Origin": {"http://127.0.0.1:8080"}}
	conn, resp, err := websocket.DefaultDialer.DialContext(t.Context(), url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d), want an upgrade", url, err, status)
	}
	defer conn.Close()

	var first struct {
		Seq int64 `json:"seq"`
	}
	if err := conn.ReadJSON(&first); err != nil {
		t.Fatalf("read first message: %v", err)
	}
	if first.Seq != 1 {
		t.Errorf("first message has seq %d, want 1", first.Seq)
	}

	_, resp, err = websocket.DefaultDialer.DialContext(t.Context(), url, http.Header{"Origin": {"http://evil.example"}})
	if err == nil {
		t.Error("dial from a foreign origin succeeded, want a rejection")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("dial from a foreign origin: %v, want 403", err)
	}
}
