package register

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/webhook"
)

func TestMain(m *testing.M) { os.Exit(giteatest.Main(m)) }

// receiver replaces octavo serve's webhook endpoint: it checks the
// signature with the webhook package and records accepted deliveries in the
// deliveries table, which is all register looks at.
type receiver struct {
	t      *testing.T
	st     *store.Store
	mu     sync.Mutex
	secret string
	bad    int // deliveries rejected for their signature
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secret = s
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	signed, err := webhook.SignedBody(r.Header, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	rc.mu.Lock()
	secret := rc.secret
	rc.mu.Unlock()
	if err := webhook.Verify(r.Header, []byte(secret), signed); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}

	d, err := webhook.Parse(r.Header, signed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	row := &store.Delivery{DeliveryID: d.ID, Event: d.Event, RepoFullName: d.Repo.FullName}
	if _, err := store.InsertDelivery(rc.st.DB.WithContext(r.Context()), row); err != nil {
		rc.t.Errorf("record delivery: %v", err)
	}
	w.WriteHeader(http.StatusAccepted)
}

func TestGiteaRegisterIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("real Gitea test skipped with -short")
	}
	inst := giteatest.Shared(t)
	ctx := t.Context()
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	repo, err := inst.CreateRepo(ctx, "register-"+hex.EncodeToString(suffix))
	if err != nil {
		t.Fatal(err)
	}
	other, err := inst.CreateHook(ctx, repo.FullName, "http://127.0.0.1:9/someone-else", "their-secret", "push")
	if err != nil {
		t.Fatal(err)
	}

	dataDir := t.TempDir()
	st, err := store.Open(ctx, store.Options{DSN: filepath.Join(dataDir, "octavo.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rc := &receiver{t: t, st: st, secret: "first-secret-3f9c2a"}
	mux := http.NewServeMux()
	mux.Handle("POST /ci/hooks", rc)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	vars := map[string]string{
		"OCTAVO_FORGE_URL":      inst.URL,
		"OCTAVO_FORGE_TOKEN":    inst.Token,
		"OCTAVO_WEBHOOK_SECRET": "first-secret-3f9c2a",
		"OCTAVO_PUBLIC_URL":     srv.URL + "/ci/",
		"OCTAVO_DATA_DIR":       dataDir,
	}
	ourURL := srv.URL + "/ci/hooks"
	register := func(args ...string) (int, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		e := env{getenv: func(k string) string { return vars[k] }, hc: &http.Client{Timeout: 30 * time.Second}, pollEvery: 50 * time.Millisecond}
		code := run(ctx, args, e, &out, &errOut)
		text := out.String() + errOut.String()
		if strings.Contains(text, inst.Token) || strings.Contains(text, vars["OCTAVO_WEBHOOK_SECRET"]) {
			t.Errorf("output shows the token or secret:\n%s", text)
		}
		return code, text
	}
	ours := func() []giteatest.Hook {
		t.Helper()
		hooks, err := inst.Hooks(ctx, repo.FullName)
		if err != nil {
			t.Fatal(err)
		}
		var mine []giteatest.Hook
		otherSeen := false
		for _, h := range hooks {
			switch h.Config["url"] {
			case ourURL:
				mine = append(mine, h)
			case other.Config["url"]:
				otherSeen = true
				if h.ID != other.ID || !slices.Equal(h.Events, []string{"push"}) || !h.Active {
					t.Errorf("got the other hook as %+v, want it untouched: %+v", h, other)
				}
			}
		}
		if !otherSeen {
			t.Errorf("the other hook %d is gone", other.ID)
		}
		return mine
	}
	checkOne := func(when string) giteatest.Hook {
		t.Helper()
		mine := ours()
		if len(mine) != 1 {
			t.Fatalf("%s: got %d hooks with URL %s, want 1", when, len(mine), ourURL)
		}
		for _, e := range forge.HookEvents {
			if !slices.Contains(mine[0].Events, e) {
				t.Errorf("%s: got events %v, want %s among them", when, mine[0].Events, e)
			}
		}
		if !mine[0].Active || mine[0].Config["content_type"] != "json" {
			t.Errorf("%s: got hook %+v, want active with content type json", when, mine[0])
		}
		return mine[0]
	}

	code, out := register(repo.FullName)
	if code != exitOK || !strings.Contains(out, "created: hook") || !strings.Contains(out, "test delivery: arrived") {
		t.Fatalf("first run: got exit %d, want 0 with a created hook and an arrived delivery:\n%s", code, out)
	}
	first := checkOne("after the first run")

	code, out = register(repo.FullName)
	if code != exitOK || !strings.Contains(out, "unchanged: hook") {
		t.Fatalf("second run: got exit %d, want 0 and unchanged:\n%s", code, out)
	}
	if second := checkOne("after the second run"); second.ID != first.ID {
		t.Errorf("got hook %d after the second run, want hook %d kept", second.ID, first.ID)
	}

	// A rotated secret: Gitea cannot update it in place, so the hook is
	// replaced, and the new one signs with the new secret.
	vars["OCTAVO_WEBHOOK_SECRET"] = "second-secret-8e1d77"
	rc.setSecret("second-secret-8e1d77")
	code, out = register("--wait", "5s", repo.FullName)
	if code != exitOK || !strings.Contains(out, "updated: hook") || !strings.Contains(out, "test delivery: arrived") {
		t.Fatalf("run after the secret changed: got exit %d, want 0 with a replaced hook and an arrived delivery:\n%s", code, out)
	}
	if third := checkOne("after the secret changed"); third.ID == first.ID {
		t.Errorf("got hook %d kept after the secret changed, want a new hook", third.ID)
	}

	code, out = register("--remove", repo.FullName)
	if code != exitOK || !strings.Contains(out, "removed hook") {
		t.Fatalf("removal: got exit %d, want 0 and removed:\n%s", code, out)
	}
	if mine := ours(); len(mine) != 0 {
		t.Errorf("got %d hooks with our URL after --remove, want 0", len(mine))
	}
}
