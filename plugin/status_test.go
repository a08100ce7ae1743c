package plugin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
)

// statusForge records the commit statuses posted to it. It replaces only
// the forge's status API, because the repositories come from a real git
// server.
type statusForge struct {
	mu    sync.Mutex
	posts []postedStatus
}

type postedStatus struct {
	Path      string
	State     string `json:"state"`
	TargetURL string `json:"target_url"`
	Context   string `json:"context"`
}

func (f *statusForge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/statuses/") {
		http.NotFound(w, r)
		return
	}
	var p postedStatus
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.Path = r.URL.Path
	f.mu.Lock()
	f.posts = append(f.posts, p)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": 1, "status": p.State, "context": p.Context, "target_url": p.TargetURL})
}

func (f *statusForge) statuses(sha string) []postedStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []postedStatus
	for _, p := range f.posts {
		if strings.HasSuffix(p.Path, "/"+sha) {
			out = append(out, p)
		}
	}
	return out
}

// TestCommitStatusesFollowTheRun checks the wiring from the queue to the
// status outbox. A commit with a pipeline ends with a success status that
// links to the run page under the public URL's prefix. A commit without
// one gets no status at all.
func TestCommitStatusesFollowTheRun(t *testing.T) {
	forge := &statusForge{}
	fs := httptest.NewServer(forge)
	t.Cleanup(fs.Close)
	s, _ := newTestServer(t, map[string]string{
		"OCTAVO_FORGE_URL":  fs.URL + "/",
		"OCTAVO_PUBLIC_URL": "https://forge.example.com/ci/",
	})
	start(t, s)
	h := s.Handler()
	repo := newForgeRepo(t, "acme/app")

	id := pushHook(t, h, "/hooks", repo, "refs/heads/main", "pipeline", map[string]string{".octavo/ci.star": tagPipelineFree})
	r := waitRun(t, s, id)
	if r.State != store.RunComplete {
		t.Fatalf("run = %s (%s), want complete", r.State, r.Error)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := forge.statuses(r.SHA)
		if len(got) > 0 && got[len(got)-1].State == "success" {
			last := got[len(got)-1]
			if want := "https://forge.example.com/ci/runs/" + itoa(id); last.TargetURL != want {
				t.Errorf("target_url = %s, want %s", last.TargetURL, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses for %s = %+v, want a final success", r.SHA, got)
		}
		time.Sleep(25 * time.Millisecond)
	}

	skipped := pushHook(t, h, "/hooks", repo, "refs/heads/main", "no pipeline", map[string]string{".octavo/ci.star": ""})
	sr := waitRun(t, s, skipped)
	if sr.State != store.RunSkipped {
		t.Fatalf("run = %s, want skipped", sr.State)
	}
	var rows int64
	s.st.DB.Model(&store.CommitStatus{}).Where("sha = ?", sr.SHA).Count(&rows)
	if rows != 0 || len(forge.statuses(sr.SHA)) != 0 {
		t.Errorf("commit without pipeline has %d outbox rows and %d posts, want none", rows, len(forge.statuses(sr.SHA)))
	}
}

func itoa(id uint) string {
	b, _ := json.Marshal(id)
	return string(b)
}
