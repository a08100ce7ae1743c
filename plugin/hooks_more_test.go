package plugin

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHookErrorsNameTheCause covers rejections whose message once left
// the sender guessing: a gzip body got a JSON syntax error about byte
// 0x1f, and the 413 named the setting but not the limit.
func TestHookErrorsNameTheCause(t *testing.T) {
	s, _ := newTestServer(t, map[string]string{"OCTAVO_WEBHOOK_MAX_BODY": "2048"})
	h := s.Handler()
	good := pushBody(t, "acme/app", "http://127.0.0.1:1/acme/app.git", "refs/heads/main", strings.Repeat("a", 40), strings.Repeat("b", 40), "m")

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(good); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	compressed := signedRequest(t, "/hooks", "push", gz.Bytes(), hookSecret)
	compressed.Header.Set("Content-Encoding", "gzip")
	if code, body := serveHTTP(h, compressed); code != http.StatusUnsupportedMediaType || !strings.Contains(body, "Content-Encoding") {
		t.Errorf("gzip delivery = %d %s, want 415 naming Content-Encoding", code, body)
	}

	big := signedRequest(t, "/hooks", "push", bytes.Repeat([]byte("x"), 4096), hookSecret)
	if code, body := serveHTTP(h, big); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "2048") {
		t.Errorf("large delivery = %d %s, want 413 naming the limit of 2048 bytes", code, body)
	}
}

// TestRunnerThatIsNotExecutableIsRejected checks OCTAVO_RUNNER at start.
// A file without execute permission, or a folder, was once accepted and
// every run then failed.
func TestRunnerThatIsNotExecutableIsRejected(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "runner")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{plain, dir} {
		cfg := loadConfig(t, map[string]string{"OCTAVO_DATA_DIR": t.TempDir(), "OCTAVO_RUNNER": path})
		s, err := New(t.Context(), cfg, Options{})
		if err == nil {
			_ = s.Close()
			t.Errorf("New with runner %s succeeded, want an error", path)
			continue
		}
		if !strings.Contains(err.Error(), "OCTAVO_RUNNER") {
			t.Errorf("error %q does not name OCTAVO_RUNNER", err)
		}
	}
}
