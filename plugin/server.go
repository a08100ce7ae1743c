// Package plugin is the octavo sidecar as a library. [New] builds it from
// a [config.Config], and [Server.Handler] serves its HTTP routes (webhooks,
// API, status pages, badges, metrics) under the public URL's path prefix.
// [Server.Run] runs its workers until the context ends. The octavo serve
// command is a thin main over this API.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/octavo-ci/octavo/plugin/config"
	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/live"
	"github.com/octavo-ci/octavo/plugin/notify"
	"github.com/octavo-ci/octavo/plugin/queue"
	"github.com/octavo-ci/octavo/plugin/status"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui"
	"github.com/octavo-ci/octavo/plugin/workspace"
)

// Options adds what a configuration cannot carry. The zero value is ready
// to use.
type Options struct {
	// Logger receives every log line; nil discards them.
	Logger *slog.Logger
	// HTTPClient talks to the forge API; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
	// Now replaces time.Now in tests.
	Now func() time.Time
}

// Server is one sidecar. Build it with [New], serve [Server.Handler],
// call [Server.Run] once, and [Server.Close] after Run returned.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	st      *store.Store
	queue   *queue.Queue
	forge   *forge.Client // nil without a forge URL
	outbox  *status.Outbox
	hub     *live.Hub
	ui      *ui.UI
	reg     *prometheus.Registry
	metrics *queue.Metrics
	handler http.Handler

	// lock holds the data folder's lock until Close.
	lock *os.File

	// stopping turns webhook intake away with 503 once shutdown began.
	stopping atomic.Bool
}

// New opens the database (applying migrations), checks the secrets file
// and the runner, and wires the parts together. It starts no goroutine.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("new server: nil configuration")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}

	if _, err := config.LoadSecrets(cfg.SecretsFile); err != nil {
		return nil, err
	}
	runner, err := findRunner(cfg.Runner)
	if err != nil {
		return nil, err
	}
	log.Info("using runner", "path", runner)

	lock, err := openDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, store.Options{DSN: cfg.DSN(), Logger: log, Now: opts.Now})
	if err != nil {
		_ = lock.Close()
		if cfg.Database != "" {
			return nil, fmt.Errorf("OCTAVO_DATABASE (-database): %w", err)
		}
		return nil, fmt.Errorf("OCTAVO_DATA_DIR (-data-dir): %w", err)
	}

	if st.Dialect == "sqlite" {
		// A 64 MiB page cache and checkpoints every 64 MiB of WAL cut the
		// time to ingest a 1,000,000-line step by about a third (measured
		// with BenchmarkIngestMillionLines). NOTE: both settings belong to
		// the one pooled connection and are lost if database/sql replaces it.
		for _, pragma := range []string{"PRAGMA cache_size = -65536", "PRAGMA wal_autocheckpoint = 16384"} {
			if err := st.DB.WithContext(ctx).Exec(pragma).Error; err != nil {
				_ = st.Close()
				_ = lock.Close()
				return nil, fmt.Errorf("tune sqlite (%s): %w", pragma, err)
			}
		}
	}
	s := &Server{cfg: cfg, log: log, st: st, lock: lock, reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = queue.NewMetrics(s.reg)
	s.registerGauges()

	var observer notify.RunObserver
	var jobObserver notify.JobObserver
	if cfg.ForgeURL != nil {
		s.forge = forge.New(cfg.ForgeURL.String(), string(cfg.ForgeToken), cfg.ForgeKind, hc)
		s.outbox = status.New(st, s.forge, status.Options{
			PublicURL:   cfg.PublicURL,
			Context:     cfg.StatusContext,
			JobStatuses: cfg.JobStatuses,
			Logger:      log,
			Now:         opts.Now,
		})
		observer, jobObserver = s.outbox, s.outbox
	} else {
		log.Warn("no forge URL configured; commit statuses and catch-up are off", "setting", "OCTAVO_FORGE_URL")
		if cfg.ForgeToken != "" {
			log.Warn("forge token set without a forge URL; git fetches send it to no host, so private repositories cannot be cloned", "setting", "OCTAVO_FORGE_URL")
		}
	}
	s.hub = live.NewHub(log.With("component", "live"))

	secretsPath := cfg.SecretsFile
	s.queue = queue.New(queue.Options{
		Store:         st,
		Workspaces:    workspace.New(cfg.DataDir, cfg.ForgeURL, string(cfg.ForgeToken)),
		RunnerPath:    runner,
		Replica:       replicaName(cfg.DataDir),
		MaxRuns:       cfg.MaxRuns,
		RunTimeout:    cfg.RunTimeout,
		ShutdownGrace: cfg.ShutdownGrace,
		Secrets: func(fullName string) (map[string]string, error) {
			// Read on every run, so edits to the file apply without a
			// restart.
			all, err := config.LoadSecrets(secretsPath)
			if err != nil {
				return nil, err
			}
			return all.For(fullName), nil
		},
		RunObserver: observer,
		JobObserver: jobObserver,
		Live:        s.hub,
		Metrics:     s.metrics,
		Logger:      log,
		Now:         opts.Now,
	})
	s.ui, err = s.newUI()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Store returns the server's store, for programs that embed octavo.
func (s *Server) Store() *store.Store { return s.st }

// Close closes the database and releases the data folder. Call it after
// [Server.Run] returned.
func (s *Server) Close() error {
	err := s.st.Close()
	return errors.Join(err, s.lock.Close())
}

// Run reconciles runs left by an earlier process, queues catch-up runs,
// and runs the workers, the status sender and the live hub until ctx ends.
// Then it turns webhook intake away, lets active runs finish within the
// shutdown grace and returns. It returns an error when a part failed to
// start, such as reconciliation failing on the database.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)

	g.Go(func() error {
		err := s.queue.Run(gctx)
		s.stopping.Store(true)
		return err
	})
	g.Go(func() error { return s.hub.Run(gctx) })
	if s.outbox != nil {
		g.Go(func() error { return s.outbox.Run(gctx) })
	}
	if s.cfg.CatchUp && s.forge != nil {
		g.Go(func() error {
			if err := s.queue.CatchUp(gctx, forgeAdapter{s.forge}, s.cfg.CatchUpRepos); err != nil {
				s.log.ErrorContext(gctx, "catch up on pushes made while octavo was down", "err", err)
			}
			return nil
		})
	}

	<-gctx.Done()
	s.stopping.Store(true)
	err := g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// findRunner resolves the runner binary: the configured path, else
// octavo-runner next to this executable, else on PATH.
func findRunner(configured string) (string, error) {
	if configured != "" {
		fi, err := os.Stat(configured)
		if err != nil {
			return "", fmt.Errorf("OCTAVO_RUNNER (-runner): %w; set it to the octavo-runner binary", err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("OCTAVO_RUNNER (-runner): %s is not an executable file; set it to the octavo-runner binary", configured)
		}
		return configured, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "octavo-runner")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("octavo-runner")
	if err != nil {
		return "", fmt.Errorf("octavo-runner not found next to octavo or on PATH; install it or set OCTAVO_RUNNER: %w", err)
	}
	return p, nil
}

// forgeAdapter gives the queue's catch-up the forge calls it needs.
type forgeAdapter struct{ c *forge.Client }

func (a forgeAdapter) ListBranches(ctx context.Context, fullName string) ([]queue.Branch, error) {
	bs, err := a.c.ListBranches(ctx, fullName)
	if err != nil {
		return nil, err
	}
	out := make([]queue.Branch, len(bs))
	for i, b := range bs {
		out[i] = queue.Branch{Name: b.Name, SHA: b.SHA, Message: b.Message}
	}
	return out, nil
}

func (a forgeAdapter) GetRepo(ctx context.Context, fullName string) (queue.RepoInfo, error) {
	r, err := a.c.GetRepo(ctx, fullName)
	if err != nil {
		return queue.RepoInfo{}, err
	}
	return queue.RepoInfo{
		Owner: r.Owner, Name: r.Name, FullName: r.FullName, CloneURL: r.CloneURL,
		HTMLURL: r.HTMLURL, DefaultBranch: r.DefaultBranch, Private: r.Private(),
	}, nil
}
