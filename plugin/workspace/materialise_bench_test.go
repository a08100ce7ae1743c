package workspace

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/workspace/gittest"
)

// BenchmarkMaterialise times the worker's path from a taken run to a
// checkout ready for the runner, against a real git server on loopback.
// Each iteration pushes a new commit first, outside the timer. "pushed"
// then times the fetch as well. "prefetched" fetches before the timer
// starts, as when the preparer got to the run first. Besides the mean it
// reports the median as p50-ns/op, which a few slow iterations on a busy
// machine do not move.
func BenchmarkMaterialise(b *testing.B) {
	paths := []struct {
		name        string
		materialise func(ctx context.Context, m *Manager, cloneURL, sha, dir string) error
	}{
		{"Materialise", func(ctx context.Context, m *Manager, cloneURL, sha, dir string) error {
			has, err := m.Materialise(ctx, "acme/app", cloneURL, sha, PipelineFile, dir)
			if err == nil && !has {
				b.Fatalf("Materialise found no %s at %s", PipelineFile, sha)
			}
			return err
		}},
		{"three calls", func(ctx context.Context, m *Manager, cloneURL, sha, dir string) error {
			if err := m.Fetch(ctx, "acme/app", cloneURL, sha); err != nil {
				return err
			}
			has, err := m.HasFile(ctx, "acme/app", sha, PipelineFile)
			if err != nil {
				return err
			}
			if !has {
				b.Fatalf("HasFile found no %s at %s", PipelineFile, sha)
			}
			return m.Checkout(ctx, "acme/app", sha, dir)
		}},
	}
	for _, prefetch := range []bool{false, true} {
		for _, path := range paths {
			name := "pushed/" + path.name
			if prefetch {
				name = "prefetched/" + path.name
			}
			b.Run(name, func(b *testing.B) {
				benchmarkMaterialise(b, prefetch, path.materialise)
			})
		}
	}
}

func benchmarkMaterialise(b *testing.B, prefetch bool, materialise func(ctx context.Context, m *Manager, cloneURL, sha, dir string) error) {
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
		if prefetch {
			if err := m.Fetch(b.Context(), "acme/app", cloneURL, sha); err != nil {
				b.Fatalf("Fetch before the timer: %v", err)
			}
		}
		dir := filepath.Join(runs, strconv.Itoa(i))
		b.StartTimer()

		start := time.Now()
		if err := materialise(b.Context(), m, cloneURL, sha, dir); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))

		b.StopTimer()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()

	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns/op")
}
