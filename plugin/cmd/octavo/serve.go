package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/octavo-ci/octavo/plugin"
	"github.com/octavo-ci/octavo/plugin/config"
)

// shutdownTimeout bounds how long open HTTP requests may take to finish
// once shutdown began.
const shutdownTimeout = 10 * time.Second

// serveMain runs octavo serve until ctx ends (SIGINT or SIGTERM).
func serveMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "octavo serve: invalid settings:\n%v\n", err)
		return 2
	}

	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	logger.Info("starting octavo", "config", cfg)
	if err := protectProcess(); err != nil {
		logger.Warn("mark process not dumpable; pipeline steps of the same user can read its environment", "err", err)
	}

	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("octavo stopped with an error", "err", err)
		fmt.Fprintf(stderr, "octavo serve: %v\n", err)
		return 1
	}
	return 0
}

// serve runs the HTTP server and the sidecar's workers with one shutdown
// path: ctx ending stops intake first, then the workers get their grace.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	srv, err := plugin.New(ctx, cfg, plugin.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (OCTAVO_LISTEN): %w", cfg.Listen, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "addr", ln.Addr().String(), "public_url", cfg.PublicURL.String())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("shutdown starting", "cause", context.Cause(gctx))
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil {
			return fmt.Errorf("shut down http server: %w", err)
		}
		return nil
	})

	err = g.Wait()
	logger.Info("shutdown complete")
	return err
}
