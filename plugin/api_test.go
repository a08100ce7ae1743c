package plugin

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
)

// addRuns inserts n complete runs of branch main for a new repository.
func addRuns(t *testing.T, s *Server, fullName string, private bool, n int) {
	t.Helper()
	repo := store.Repo{FullName: fullName, Owner: "acme", Name: fullName[len("acme/"):], Private: private}
	if err := s.st.DB.Create(&repo).Error; err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		run := store.Run{RepoID: repo.ID, Ref: "refs/heads/main", Branch: "main", SHA: "0123456789abcdef0123456789abcdef01234567", State: store.RunComplete}
		if err := s.st.DB.Create(&run).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// TestListRunsPages checks the run list's pages. A page with fewer runs
// than the limit once still carried next_before, and pages of a private
// repository's runs came back empty but with a next_before, which told
// anyone that the repository existed and had runs.
func TestListRunsPages(t *testing.T) {
	s, _ := newTestServer(t, nil)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	addRuns(t, s, "acme/one", false, 1)
	addRuns(t, s, "acme/many", false, 25)
	addRuns(t, s, "acme/hidden", true, 30)
	addRuns(t, s, "acme/last", false, 2)

	type page struct {
		Runs       []apiRun `json:"runs"`
		NextBefore uint     `json:"next_before"`
	}
	get := func(t *testing.T, query string) page {
		t.Helper()
		var p page
		if code := getJSON(t, srv.URL+"/api/v1/runs?"+query, &p); code != http.StatusOK {
			t.Fatalf("GET runs?%s = %d, want 200", query, code)
		}
		return p
	}

	t.Run("single run has no next page", func(t *testing.T) {
		p := get(t, "repo=acme/one&ref=main")
		if len(p.Runs) != 1 || p.NextBefore != 0 {
			t.Errorf("got %d runs and next_before %d, want 1 run and none", len(p.Runs), p.NextBefore)
		}
	})
	t.Run("pages of a repository cover every run once", func(t *testing.T) {
		first := get(t, "repo=acme/many&ref=refs/heads/main")
		if len(first.Runs) != 20 || first.NextBefore == 0 {
			t.Fatalf("first page has %d runs and next_before %d, want 20 and a next page", len(first.Runs), first.NextBefore)
		}
		second := get(t, "repo=acme/many&ref=main&before="+strconv.FormatUint(uint64(first.NextBefore), 10))
		if len(second.Runs) != 5 || second.NextBefore != 0 {
			t.Errorf("second page has %d runs and next_before %d, want 5 and none", len(second.Runs), second.NextBefore)
		}
		all := append(first.Runs, second.Runs...)
		for i := 1; i < len(all); i++ {
			if all[i].ID != all[i-1].ID-1 {
				t.Errorf("run %d has id %d after %d, want newest first without gaps", i, all[i].ID, all[i-1].ID)
			}
		}
	})
	t.Run("private repository looks like an unknown one", func(t *testing.T) {
		got := get(t, "repo=acme/hidden")
		want := get(t, "repo=acme/unknown")
		if len(got.Runs) != 0 || got.NextBefore != want.NextBefore {
			t.Errorf("private repository: %d runs, next_before %d; unknown repository: next_before %d; want no runs and the same page", len(got.Runs), got.NextBefore, want.NextBefore)
		}
	})
	t.Run("before beyond every id lists the newest runs", func(t *testing.T) {
		// A before of 2^63 or more once matched nothing on SQLite.
		for _, before := range []string{"9223372036854775808", "18446744073709551615"} {
			p := get(t, "repo=acme/one&before="+before)
			if len(p.Runs) != 1 {
				t.Errorf("before=%s: got %d runs, want 1", before, len(p.Runs))
			}
		}
	})
	t.Run("unfiltered pages skip private runs without gaps", func(t *testing.T) {
		seen := 0
		query := "limit=10"
		for range 10 {
			p := get(t, query)
			for _, r := range p.Runs {
				if r.Repo == "acme/hidden" {
					t.Fatalf("page lists run %d of the private repository", r.ID)
				}
			}
			seen += len(p.Runs)
			if p.NextBefore == 0 {
				break
			}
			if len(p.Runs) != 10 {
				t.Errorf("page with a next page has %d runs, want 10", len(p.Runs))
			}
			query = "limit=10&before=" + strconv.FormatUint(uint64(p.NextBefore), 10)
		}
		if seen != 28 {
			t.Errorf("pages listed %d runs, want the 28 public ones", seen)
		}
	})
}

// TestAPIResponsesAreNotSniffed checks that JSON from the sidecar's own
// API carries nosniff. Run logs are untrusted pipeline output, and the log
// and list responses once let a browser guess their type.
func TestAPIResponsesAreNotSniffed(t *testing.T) {
	s, _ := newTestServer(t, nil)
	addRuns(t, s, "acme/app", false, 1)
	for _, path := range []string{"/api/v1/runs", "/api/v1/runs/1/log", "/healthz", "/nope"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options = %q, want nosniff", path, got)
		}
	}
}
