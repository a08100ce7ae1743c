package queue

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/webhook"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// BenchmarkIntake measures Intake of push deliveries into SQLite from 16
// concurrent callers, without HTTP.
func BenchmarkIntake(b *testing.B) {
	dir := b.TempDir()
	st, err := store.Open(b.Context(), store.Options{DSN: filepath.Join(dir, "octavo.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	q := New(Options{Store: st, Workspaces: workspace.New(dir, nil, "")})

	var wg sync.WaitGroup
	next := make(chan int)
	b.ResetTimer()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d := &webhook.Delivery{
					ID: fmt.Sprintf("d-%d", i), Event: "push", Action: webhook.ActionRun,
					Repo: webhook.Repo{Owner: "bench", Name: "app", FullName: "bench/app"},
					Ref:  fmt.Sprintf("refs/heads/b%d", i%50),
					Push: &webhook.Push{SHA: fmt.Sprintf("%040d", i), Ref: fmt.Sprintf("refs/heads/b%d", i%50)},
				}
				if _, err := q.Intake(b.Context(), d); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
