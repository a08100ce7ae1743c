package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the sidecar's HTTP handler. It serves every route under
// the public URL's path prefix, and also without it, so a program may
// mount it under the prefix with or without [http.StripPrefix].
func (s *Server) Handler() http.Handler { return s.handler }

// routes builds the router: the status UI's routes first, then the webhook,
// API, health and metrics routes, then a catch-all 404, all wrapped in
// recovery and request logging.
func (s *Server) routes() http.Handler {
	r := mux.NewRouter()
	registerUI(s, r)
	s.registerHookRoutes(r)
	s.registerAPIRoutes(r)
	r.HandleFunc("/healthz", s.handleHealth).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, "no route for "+req.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method "+req.Method+" not allowed on "+req.URL.Path)
	})

	var h http.Handler = r
	h = s.recoverPanics(h)
	h = s.logRequests(h)
	return stripPrefix(s.cfg.Prefix(), h)
}

// stripPrefix removes prefix ("/ci") from request paths that carry it.
func stripPrefix(prefix string, h http.Handler) http.Handler {
	if prefix == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimPrefix(p, prefix)
			if r2.URL.Path == "" {
				r2.URL.Path = "/"
			}
			if r.URL.RawPath != "" {
				r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, prefix)
			}
			r = r2
		}
		h.ServeHTTP(w, r)
	})
}

type loggerKey struct{}

// requestLogger returns the request-scoped logger that logRequests put in
// ctx, or fallback.
func requestLogger(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack hands over the connection for the websocket upgrade, because
// gorilla/websocket asserts http.Hijacker on the writer it is given
// instead of using http.ResponseController. A hijacked request is logged
// with status 101.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

// Flush sends buffered data to the client, for handlers that stream.
func (r *statusRecorder) Flush() {
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// logRequests logs each request at debug level and gives handlers a
// logger with the method and path.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		log := s.log.With("method", r.Method, "path", r.URL.Path)
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), loggerKey{}, log)))
		log.DebugContext(r.Context(), "http request", "status", rec.status, "duration", time.Since(start))
	})
}

// recoverPanics turns a handler panic into a 500 and an error log line.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil || v == http.ErrAbortHandler {
				if v != nil {
					panic(v)
				}
				return
			}
			requestLogger(r.Context(), s.log).ErrorContext(r.Context(), "handler panicked", "panic", v, "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	db, err := s.st.DB.DB()
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		requestLogger(r.Context(), s.log).ErrorContext(ctx, "health check: database unreachable", "err", err)
		writeError(w, http.StatusServiceUnavailable, "database unreachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
