package plugin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
)

type fixture struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func fixtureRequest(t *testing.T, path string) *http.Request {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(f.Body))
	for k, v := range f.Headers {
		req.Header.Set(k, v)
	}
	return req
}

// TestFixtureDeliveriesOverHTTP replays every captured delivery of the
// three forge versions against the webhook endpoint.
func TestFixtureDeliveriesOverHTTP(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()

	paths, err := filepath.Glob("webhook/testdata/*/*.json")
	if err != nil || len(paths) < 57 {
		t.Fatalf("found %d fixtures (%v), want 57", len(paths), err)
	}
	for _, path := range paths {
		name := filepath.Base(path)
		t.Run(path, func(t *testing.T) {
			code, body := serveHTTP(h, fixtureRequest(t, path))
			reply := decodeReply(t, body)

			switch {
			case name == "push-test-delivery-no-secret.json":
				if code != http.StatusUnauthorized {
					t.Errorf("status = %d %s, want 401", code, body)
				}
			case strings.HasPrefix(name, "push-") && name != "push-test-delivery.json" && name != "push-tag-deleted.json":
				if code != http.StatusAccepted || reply.RunID == 0 {
					t.Errorf("status = %d %s, want 202 with a run", code, body)
				}
			case strings.HasPrefix(name, "delete-") || name == "push-tag-deleted.json":
				if code != http.StatusOK || !strings.HasPrefix(reply.Result, "canceled") {
					t.Errorf("status = %d %s, want 200 canceled", code, body)
				}
			default:
				if code != http.StatusOK || !strings.HasPrefix(reply.Result, "ignored") {
					t.Errorf("status = %d %s, want 200 ignored", code, body)
				}
			}

			if code == http.StatusUnauthorized {
				return
			}
			again, body := serveHTTP(h, fixtureRequest(t, path))
			if again != http.StatusOK || !decodeReply(t, body).Duplicate {
				t.Errorf("redelivery = %d %s, want 200 duplicate", again, body)
			}
		})
	}

	// Each forge version pushed each run-worthy case once; a tag push
	// and its create delivery make one run.
	var runs, deliveries int64
	s.st.DB.Model(&store.Run{}).Count(&runs)
	s.st.DB.Model(&store.Delivery{}).Count(&deliveries)
	if deliveries != int64(len(paths)-3) {
		t.Errorf("%d deliveries stored, want %d (all but the unsigned ones)", deliveries, len(paths)-3)
	}
	var tagRuns int64
	s.st.DB.Model(&store.Run{}).Where("tag <> ''").Count(&tagRuns)
	if tagRuns != 6 {
		t.Errorf("%d tag runs, want 6 (two tags on three forges)", tagRuns)
	}
	if runs != 24 {
		t.Errorf("%d runs, want 24 (eight pushes on three forges)", runs)
	}
}

func TestHookRejectsBadInput(t *testing.T) {
	s, cfg := newTestServer(t, map[string]string{"OCTAVO_WEBHOOK_MAX_BODY": "2048"})
	h := s.Handler()
	good := pushBody(t, "acme/app", "http://127.0.0.1:1/acme/app.git", "refs/heads/main", strings.Repeat("a", 40), strings.Repeat("b", 40), "m")
	_ = cfg

	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		want   string
	}{
		{"missing signature is 401", func() *http.Request {
			r := signedRequest(t, "/hooks", "push", good, hookSecret)
			r.Header.Del("X-Gitea-Signature")
			return r
		}, http.StatusUnauthorized, "missing webhook signature"},
		{"empty signature is 401", func() *http.Request {
			r := signedRequest(t, "/hooks", "push", good, hookSecret)
			r.Header.Set("X-Gitea-Signature", "")
			r.Header.Set("X-Hub-Signature-256", "sha256=")
			return r
		}, http.StatusUnauthorized, "missing webhook signature"},
		{"wrong secret is 401", func() *http.Request {
			return signedRequest(t, "/hooks", "push", good, "not-the-secret")
		}, http.StatusUnauthorized, "does not match"},
		{"malformed json is 400", func() *http.Request {
			return signedRequest(t, "/hooks", "push", []byte(`{"ref":`), hookSecret)
		}, http.StatusBadRequest, "malformed"},
		{"unsupported content type is 415", func() *http.Request {
			r := signedRequest(t, "/hooks", "push", good, hookSecret)
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, http.StatusUnsupportedMediaType, "text/plain"},
		{"body over the limit is 413", func() *http.Request {
			big := bytes.Repeat([]byte("x"), 4096)
			return signedRequest(t, "/hooks", "push", big, hookSecret)
		}, http.StatusRequestEntityTooLarge, "OCTAVO_WEBHOOK_MAX_BODY"},
		{"missing delivery id is 400", func() *http.Request {
			r := signedRequest(t, "/hooks", "push", good, hookSecret)
			r.Header.Del("X-Gitea-Delivery")
			return r
		}, http.StatusBadRequest, "X-Gitea-Delivery"},
		{"status event is ignored", func() *http.Request {
			return signedRequest(t, "/hooks", "status", []byte(`{"sha":"x"}`), hookSecret)
		}, http.StatusOK, "ignored: unsupported event status"},
		{"skip ci is ignored", func() *http.Request {
			b := pushBody(t, "acme/app", "http://127.0.0.1:1/x.git", "refs/heads/main", strings.Repeat("a", 40), strings.Repeat("c", 40), "docs [skip ci]")
			return signedRequest(t, "/hooks", "push", b, hookSecret)
		}, http.StatusOK, "ignored: skip ci"},
		{"get on hooks is 405", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/hooks", nil)
		}, http.StatusMethodNotAllowed, "not allowed"},
		{"unknown path is 404", func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/nope", nil)
		}, http.StatusNotFound, "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := serveHTTP(h, tt.req())
			if code != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("response = %d %s, want %d containing %q", code, body, tt.status, tt.want)
			}
			if strings.Contains(body, hookSecret) {
				t.Errorf("response %s contains the secret", body)
			}
		})
	}

	var runs int64
	s.st.DB.Model(&store.Run{}).Count(&runs)
	if runs != 0 {
		t.Errorf("%d runs after only bad or ignored deliveries, want 0", runs)
	}
}

func TestMetricsCountDeliveries(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()
	body := pushBody(t, "acme/app", "http://127.0.0.1:1/acme/app.git", "refs/heads/main", strings.Repeat("a", 40), strings.Repeat("b", 40), "m")
	if code, out := serveHTTP(h, signedRequest(t, "/hooks", "push", body, hookSecret)); code != http.StatusAccepted {
		t.Fatalf("push = %d %s, want 202", code, out)
	}
	if code, _ := serveHTTP(h, signedRequest(t, "/hooks", "push", body, "wrong")); code != http.StatusUnauthorized {
		t.Fatalf("wrongly signed push = %d, want 401", code)
	}

	code, out := serveHTTP(h, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200", code)
	}
	for _, want := range []string{
		`octavo_deliveries_total{result="queued"} 1`,
		`octavo_deliveries_total{result="rejected"} 1`,
		"octavo_queue_length 1",
		"octavo_active_runs 0",
		"octavo_ingest_lag_seconds_bucket",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
