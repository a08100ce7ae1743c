package store

import (
	"path/filepath"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store/storetest"
)

// TestUIQueries runs the status page's queries on SQLite and PostgreSQL,
// whose quoting of the joined repository table differs.
func TestUIQueries(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "octavo.db") }},
		{"postgres", func(t *testing.T) string { return storetest.Postgres(t) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			s := openTestStore(t, db.dsn(t))
			ctx := t.Context()

			pub := Repo{FullName: "alice/app", Owner: "alice", Name: "app"}
			priv := Repo{FullName: "alice/secret", Owner: "alice", Name: "secret", Private: true}
			for _, r := range []*Repo{&pub, &priv} {
				if err := s.DB.Create(r).Error; err != nil {
					t.Fatal(err)
				}
			}
			pubRun := Run{RepoID: pub.ID, Ref: "refs/heads/main", Branch: "main", SHA: "a", State: RunComplete}
			privRun := Run{RepoID: priv.ID, Ref: "refs/heads/main", Branch: "main", SHA: "b", State: RunComplete}
			for _, r := range []*Run{&pubRun, &privRun} {
				if err := s.DB.Create(r).Error; err != nil {
					t.Fatal(err)
				}
			}
			for seq := int64(1); seq <= 5; seq++ {
				job := "a"
				if seq%2 == 0 {
					job = "b"
				}
				ev := RunEvent{RunID: pubRun.ID, Seq: seq, Type: "sh_output", JobName: job, Data: "{}"}
				if err := AppendEvents(s.DB, pubRun.ID, []RunEvent{ev}); err != nil {
					t.Fatal(err)
				}
			}

			got, found, err := s.PublicRun(ctx, pubRun.ID)
			if err != nil || !found || got.Repo.FullName != "alice/app" {
				t.Errorf("PublicRun(public) = %+v, %v, %v; want the run with its repository", got, found, err)
			}
			if _, found, err := s.PublicRun(ctx, privRun.ID); err != nil || found {
				t.Errorf("PublicRun(private) found = %v, err = %v; want not found", found, err)
			}
			if _, found, err := s.PublicRepo(ctx, "alice", "secret"); err != nil || found {
				t.Errorf("PublicRepo(private) found = %v, err = %v; want not found", found, err)
			}

			b := "b"
			events, err := s.PageRunEvents(ctx, EventPage{RunID: pubRun.ID, Job: &b, Before: 5, Limit: 10, Tail: true})
			if err != nil || len(events) != 2 || events[0].Seq != 2 || events[1].Seq != 4 {
				t.Errorf("PageRunEvents(job b before 5) = %+v, %v; want seqs 2 and 4", events, err)
			}

			repos, err := s.ListPublicRepos(ctx)
			if err != nil || len(repos) != 1 || repos[0].FullName != "alice/app" {
				t.Errorf("ListPublicRepos = %+v, %v; want only alice/app", repos, err)
			}
			runs, err := s.ListRepoRuns(ctx, RepoRunFilter{RepoID: pub.ID, Branch: "main", States: []RunState{RunComplete}, Limit: 5})
			if err != nil || len(runs) != 1 {
				t.Errorf("ListRepoRuns = %+v, %v; want one run", runs, err)
			}
			branches, err := s.RunBranches(ctx, pub.ID)
			if err != nil || len(branches) != 1 || branches[0] != "main" {
				t.Errorf("RunBranches = %v, %v; want [main]", branches, err)
			}
		})
	}
}
