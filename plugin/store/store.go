// Package store is the sidecar's persistence layer: GORM models for
// repositories, deliveries, runs, jobs, steps, run events and the commit
// status outbox, opened on SQLite (the default) or PostgreSQL, with versioned
// migrations applied at start-up.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Options configures [Open]. The zero value is not usable: DSN is required.
type Options struct {
	// DSN selects the database. A value starting with "postgres://",
	// "postgresql://" or containing "host=" opens PostgreSQL; anything else
	// is a SQLite file path, optionally prefixed with "sqlite:" or "file:".
	DSN string
	// Logger receives GORM's warnings and slow queries. Nil discards them.
	Logger *slog.Logger
	// Now replaces time.Now for the timestamps GORM sets; nil means time.Now.
	Now func() time.Time
}

// Store wraps the GORM handle. DB is safe for concurrent use; every query
// should pass a context with DB.WithContext.
type Store struct {
	DB      *gorm.DB
	Dialect string // "sqlite" or "postgres"
}

// Open connects to the database, applies pending migrations and returns the
// store. The caller must call [Store.Close].
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.DSN == "" {
		return nil, errors.New("open database: empty DSN (set OCTAVO_DATABASE or OCTAVO_DATA_DIR)")
	}

	// GORM logs a failed connection with the driver's error as a raw
	// value, which slog's JSON handler cannot encode. Open returns that
	// error to the caller anyway, so GORM stays quiet until it is open.
	gcfg := &gorm.Config{
		TranslateError: true,
		Logger:         logger.Discard,
	}
	if opts.Now != nil {
		gcfg.NowFunc = opts.Now
	}

	var (
		dialector gorm.Dialector
		dialect   string
	)
	if isPostgres(opts.DSN) {
		dialector, dialect = postgres.Open(opts.DSN), "postgres"
	} else {
		dsn, err := sqliteDSN(opts.DSN)
		if err != nil {
			return nil, err
		}
		dialector, dialect = sqlite.Open(dsn), "sqlite"
	}

	db, err := gorm.Open(dialector, gcfg)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	db.Logger = newGormLogger(opts.Logger)
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if dialect == "sqlite" {
		// NOTE: SQLite allows one writer at a time. One shared connection
		// serialises every statement inside the process, so no statement ever
		// sees SQLITE_BUSY from a sibling connection; the busy timeout covers
		// other processes (octavo CLI commands) on the same file.
		sqlDB.SetMaxOpenConns(1)
	} else {
		sqlDB.SetMaxOpenConns(16)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}

	s := &Store{DB: db, Dialect: dialect}
	if err := s.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the underlying connection pool.
func (s *Store) Close() error {
	sqlDB, err := s.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") ||
		strings.HasPrefix(dsn, "postgresql://") ||
		strings.Contains(dsn, "host=")
}

// sqliteDSN turns a path into a go-sqlite3 DSN with WAL, a busy timeout,
// foreign keys and IMMEDIATE transactions (so a read-then-write transaction
// takes the write lock up front instead of failing half-way with
// SQLITE_BUSY). It creates the parent folder.
func sqliteDSN(dsn string) (string, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return "", fmt.Errorf("open sqlite database %q: empty file path", dsn)
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return "", fmt.Errorf("create database folder for %s: %w", path, err)
		}
	}

	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	q.Set("_synchronous", "NORMAL")
	return "file:" + path + "?" + q.Encode(), nil
}

// newGormLogger routes GORM's own log lines into slog at warn level, with
// queries slower than 500 ms reported.
func newGormLogger(l *slog.Logger) logger.Interface {
	if l == nil {
		return logger.Discard
	}
	return logger.NewSlogLogger(l.With("component", "gorm"), logger.Config{
		SlowThreshold:             500 * time.Millisecond,
		LogLevel:                  logger.Warn,
		IgnoreRecordNotFoundError: true,
		ParameterizedQueries:      true,
	})
}
