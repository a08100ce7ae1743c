package workspace

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/workspace/gittest"
)

// materialisePath is one way for the worker and the preparer to reach a
// commit in the mirror.
type materialisePath struct {
	name string
	// worker checks sha out into dir, as the worker does for a taken run.
	worker func(ctx context.Context, m *Manager, cloneURL, sha, dir string) error
	// preparer fetches sha and looks up its pipeline file, as the
	// preparer does for a new run.
	preparer func(ctx context.Context, m *Manager, cloneURL, sha string) error
}

var materialisePaths = []materialisePath{
	{
		name: "Materialise",
		worker: func(ctx context.Context, m *Manager, cloneURL, sha, dir string) error {
			_, err := m.Materialise(ctx, "acme/app", cloneURL, sha, PipelineFile, dir)
			return err
		},
		preparer: func(ctx context.Context, m *Manager, cloneURL, sha string) error {
			_, err := m.Lookup(ctx, "acme/app", cloneURL, sha, PipelineFile)
			return err
		},
	},
	{
		name: "three calls",
		worker: func(ctx context.Context, m *Manager, cloneURL, sha, dir string) error {
			if err := m.Fetch(ctx, "acme/app", cloneURL, sha); err != nil {
				return err
			}
			if _, err := m.HasFile(ctx, "acme/app", sha, PipelineFile); err != nil {
				return err
			}
			return m.Checkout(ctx, "acme/app", sha, dir)
		},
		preparer: func(ctx context.Context, m *Manager, cloneURL, sha string) error {
			if err := m.Fetch(ctx, "acme/app", cloneURL, sha); err != nil {
				return err
			}
			_, err := m.HasFile(ctx, "acme/app", sha, PipelineFile)
			return err
		},
	},
}

// BenchmarkMaterialise times the worker's path from a taken run to a
// checkout ready for the runner, against a real git server on loopback.
// Each iteration pushes a new commit first, outside the timer. Then
// "pushed" times the worker alone, fetch included. "racing" starts the
// preparer at the same moment, as when an idle worker takes a new run, and
// times only the worker. "prefetched" lets the preparer finish before the
// timer starts, as when the run waited in the queue.
//
// Besides the mean it reports the median as p50-ns/op, which a few slow
// iterations on a busy machine do not move.
func BenchmarkMaterialise(b *testing.B) {
	for _, setup := range []string{"pushed", "racing", "prefetched"} {
		for _, path := range materialisePaths {
			b.Run(setup+"/"+path.name, func(b *testing.B) {
				benchmarkMaterialise(b, setup, path)
			})
		}
	}
}

func benchmarkMaterialise(b *testing.B, setup string, path materialisePath) {
	repo := gittest.NewRepo(b, "sha1")
	repo.Commit("first", map[string]string{PipelineFile: "job()\n"})
	srv := gittest.Serve(b, b.TempDir(), testToken)
	cloneURL := srv.Publish(b, repo, "acme/app")
	m := New(b.TempDir(), mustURL(b, srv.URL+"/"), testToken)
	if err := m.Fetch(b.Context(), "acme/app", cloneURL, ""); err != nil {
		b.Fatalf("first Fetch: %v", err)
	}
	runs := b.TempDir()
	durations := make([]time.Duration, 0, b.N)

	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		sha := repo.Commit("push "+strconv.Itoa(i), map[string]string{"counter": strconv.Itoa(i) + "\n"})
		srv.Publish(b, repo, "acme/app")
		if setup == "prefetched" {
			if err := path.preparer(b.Context(), m, cloneURL, sha); err != nil {
				b.Fatalf("preparer before the timer: %v", err)
			}
		}
		dir := filepath.Join(runs, strconv.Itoa(i))
		var preparer sync.WaitGroup
		var preparerErr error
		b.StartTimer()

		start := time.Now()
		if setup == "racing" {
			preparer.Go(func() { preparerErr = path.preparer(b.Context(), m, cloneURL, sha) })
		}
		if err := path.worker(b.Context(), m, cloneURL, sha, dir); err != nil {
			b.Fatalf("worker: %v", err)
		}
		durations = append(durations, time.Since(start))

		b.StopTimer()
		preparer.Wait()
		if preparerErr != nil {
			b.Fatalf("racing preparer: %v", preparerErr)
		}
		if _, err := os.Stat(filepath.Join(dir, PipelineFile)); err != nil {
			b.Fatalf("worker left no pipeline file: %v", err)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()

	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns/op")
}
