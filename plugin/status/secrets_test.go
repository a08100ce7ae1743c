package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/store"
)

// syncBuffer is a bytes.Buffer that a slog handler and a test can share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestOutboxNeverLogsToken runs the sender against a forge that echoes the
// request's Authorization header in every way a misbehaving forge or proxy
// can: in error bodies, in an undecodable success body and in a redirect
// to an address that refuses connections. Neither the log nor the stored
// row may contain the token. The redirect case used to leak it, because
// only the response body was scrubbed and the transport error repeats the
// redirect URL.
func TestOutboxNeverLogsToken(t *testing.T) {
	const token = "f3c1d9e2a7b4c5d6e7f8091a2b3c4d5e6f708192"
	var (
		mu    sync.Mutex
		calls int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		call := calls
		mu.Unlock()
		auth := r.Header.Get("Authorization")
		switch call {
		case 1:
			http.Error(w, `{"message":"bad header `+auth+`"}`, http.StatusUnauthorized)
		case 2:
			http.Error(w, "upstream saw "+auth, http.StatusInternalServerError)
		case 3:
			w.WriteHeader(http.StatusCreated)
			_, _ = fmt.Fprintf(w, "<html>%s</html>", auth)
		case 4:
			// Port 1 on loopback refuses the connection.
			http.Redirect(w, r, "http://127.0.0.1:1/echo?auth="+strings.TrimPrefix(auth, "token "), http.StatusFound)
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":1,"status":"success"}`))
		}
	}))
	t.Cleanup(srv.Close)

	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, repo := newTestStore(t)
	opts := testOptions()
	opts.Logger = log
	o := New(st, forge.New(srv.URL, token, forge.KindGitea, nil), opts)
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, o, run, finish(store.RunComplete, ""))

	var errorsSeen []string
	var seenMu sync.Mutex
	startSender(t, o)
	waitFor(t, 10*time.Second, "delivery after four failures", func() bool {
		row := getRow(t, st, "octavo")
		if row.LastError != "" {
			seenMu.Lock()
			if len(errorsSeen) == 0 || errorsSeen[len(errorsSeen)-1] != row.LastError {
				errorsSeen = append(errorsSeen, row.LastError)
			}
			seenMu.Unlock()
		}
		return row.SentVersion == 1
	})

	text := logs.String()
	for _, want := range []string{"401", "500", "decode response body", "connection refused"} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q, so a failure path did not run:\n%s", want, text)
		}
	}
	if strings.Contains(text, token) {
		t.Errorf("log contains the token:\n%s", text)
	}
	for _, e := range errorsSeen {
		if strings.Contains(e, token) {
			t.Errorf("stored last error contains the token: %s", e)
		}
	}
	if row := getRow(t, st, "octavo"); strings.Contains(fmt.Sprintf("%+v", row), token) {
		t.Errorf("stored row contains the token: %+v", row)
	}
}

// errorPoster fails every post with err.
type errorPoster struct{ err error }

func (p errorPoster) CreateStatus(context.Context, string, string, forge.StatusOptions) (*forge.Status, error) {
	return nil, p.err
}

// TestOutboxLastErrorValidUTF8 stores an error text longer than the kept
// maximum with multi-byte characters at the cut. The cut used to split a
// character, which PostgreSQL rejects in a text column, so the failure was
// never recorded and the backoff never grew.
func TestOutboxLastErrorValidUTF8(t *testing.T) {
	st, repo := newTestStore(t)
	checkLastErrorCut(t, st, repo)
}

// TestOutboxLastErrorOnPostgres is [TestOutboxLastErrorValidUTF8] on the
// database that rejected the split character.
func TestOutboxLastErrorOnPostgres(t *testing.T) {
	st, repo := newPostgresStore(t)
	checkLastErrorCut(t, st, repo)
}

func checkLastErrorCut(t *testing.T, st *store.Store, repo store.Repo) {
	t.Helper()
	opts := testOptions()
	opts.MinBackoff, opts.MaxBackoff = time.Hour, time.Hour
	long := strings.Repeat("a", maxLastError-1) + strings.Repeat("é", 10)
	o := New(st, errorPoster{err: errors.New(long)}, opts)
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, o, run, finish(store.RunComplete, ""))
	startSender(t, o)

	waitFor(t, 5*time.Second, "the failed attempt", func() bool { return getRow(t, st, "octavo").Attempts == 1 })
	row := getRow(t, st, "octavo")
	if !utf8.ValidString(row.LastError) {
		t.Errorf("got last error ending in %q, want valid UTF-8", row.LastError[len(row.LastError)-4:])
	}
	if len(row.LastError) > maxLastError {
		t.Errorf("got %d bytes of last error, want at most %d", len(row.LastError), maxLastError)
	}
	if !strings.HasPrefix(row.LastError, strings.Repeat("a", maxLastError-1)) {
		t.Errorf("got last error %q..., want the start of the error kept", row.LastError[:20])
	}
}

// TestTargetURLDropsUserInfo configures a public URL with a user name and
// password, as for an octavo behind basic authentication. The password
// used to go into every target_url, where the forge shows it to anyone
// who can read the commit.
func TestTargetURLDropsUserInfo(t *testing.T) {
	st, repo := newTestStore(t)
	opts := testOptions()
	u, err := url.Parse("https://ci:hunter2-basic-auth@forge.example.com/ci/")
	if err != nil {
		t.Fatal(err)
	}
	opts.PublicURL = u
	o := New(st, &recordingPoster{}, opts)
	run := createRun(t, st, repo, testSHA)

	setRun(t, st, o, run, setState(store.RunActive))

	row := getRow(t, st, "octavo")
	want := "https://forge.example.com/ci/runs/" + strconv.FormatUint(uint64(run.ID), 10)
	if row.TargetURL != want {
		t.Errorf("got target URL %q, want %q", row.TargetURL, want)
	}
	if u.User == nil {
		t.Error("New changed the caller's URL, want it left alone")
	}
}
