package plugin

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/config"
)

// loadConfig resolves settings from vars plus the test defaults.
func loadConfig(t *testing.T, vars map[string]string) *config.Config {
	t.Helper()
	all := map[string]string{"OCTAVO_WEBHOOK_SECRET": hookSecret, "OCTAVO_RUNNER": runnerPath, "OCTAVO_CATCH_UP": "false"}
	for k, v := range vars {
		all[k] = v
	}
	cfg, err := config.Load(nil, func(k string) string { return all[k] }, io.Discard)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg
}

// TestSecondServerOnDataDirIsRejected starts two servers on one data
// folder. The second once started too: its start-up reconciliation failed
// the first one's active runs as orphaned and removed their checkouts,
// and both fetched into the same mirrors.
func TestSecondServerOnDataDirIsRejected(t *testing.T) {
	dir := t.TempDir()
	cfg := loadConfig(t, map[string]string{"OCTAVO_DATA_DIR": dir})
	logger := slog.New(slog.DiscardHandler)

	first, err := New(t.Context(), cfg, Options{Logger: logger})
	if err != nil {
		t.Fatalf("first New: %v", err)
	}
	second, err := New(t.Context(), cfg, Options{Logger: logger})
	if err == nil {
		_ = second.Close()
		t.Fatal("second New on the same data folder succeeded, want an error")
	}
	for _, want := range []string{"OCTAVO_DATA_DIR", dir, "another octavo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := New(t.Context(), cfg, Options{Logger: logger})
	if err != nil {
		t.Fatalf("New after the first server closed: %v", err)
	}
	_ = third.Close()
}

// TestDataDirThatIsAFileNamesTheSetting checks the start-up error for a
// data folder path that is a file. It once spoke only of the database
// folder and named no setting.
func TestDataDirThatIsAFileNamesTheSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, "x")
	cfg := loadConfig(t, map[string]string{"OCTAVO_DATA_DIR": file})
	s, err := New(t.Context(), cfg, Options{})
	if err == nil {
		_ = s.Close()
		t.Fatal("New with a file as data folder succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "OCTAVO_DATA_DIR") || !strings.Contains(err.Error(), file) {
		t.Errorf("error %q does not name OCTAVO_DATA_DIR and %s", err, file)
	}
}
