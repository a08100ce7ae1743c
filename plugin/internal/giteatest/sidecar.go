package giteatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bounds of the sidecar's life cycle.
const (
	sidecarStartTimeout = 60 * time.Second
	// sidecarStopTimeout covers octavo's own grace period for active runs.
	sidecarStopTimeout = 45 * time.Second
)

// SidecarConfig configures `octavo serve` against an [Instance].
type SidecarConfig struct {
	Octavo string // path of the octavo binary
	Runner string // path of the octavo-runner binary
	Gitea  *Instance
	// Listen is the host:port octavo listens on; PublicURL is derived from it.
	Listen string
	// Dir holds the sidecar's files: data/ (OCTAVO_DATA_DIR), forge-token,
	// webhook-secret and octavo.log. Reusing a Dir keeps the sidecar's state.
	Dir string
	// Secret is the webhook secret octavo checks deliveries against.
	Secret string
	// Env holds extra KEY=VALUE settings, such as OCTAVO_MAX_RUNS=1; they
	// override the defaults above.
	Env []string
	Log *slog.Logger // may be nil
}

// Sidecar is a running `octavo serve` started by [StartSidecar].
type Sidecar struct {
	URL    string // public URL without a trailing slash
	Config SidecarConfig

	cmd    *exec.Cmd
	exited chan struct{}
	log    *slog.Logger
}

// StartSidecar starts `octavo serve` with the OCTAVO_* environment built from
// cfg, in its own process group, and returns once GET /healthz returns 200.
// Its output goes to Dir/octavo.log. The caller must call [Sidecar.Stop].
func StartSidecar(ctx context.Context, cfg SidecarConfig) (*Sidecar, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve the sidecar dir: %w", err)
	}
	cfg.Dir = dir
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("create the sidecar dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "forge-token"), []byte(cfg.Gitea.Token+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write the forge token file: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "webhook-secret"), []byte(cfg.Secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write the webhook secret file: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "octavo.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the sidecar log: %w", err)
	}
	defer logFile.Close()

	s := &Sidecar{URL: "http://" + cfg.Listen, Config: cfg, log: cfg.Log.With("component", "octavo", "listen", cfg.Listen)}
	// An octavo left running by a killed demo for the same data dir is
	// recognised by that dir in its environment.
	marker := []byte("\x00OCTAVO_DATA_DIR=" + filepath.Join(dir, "data") + "\x00")
	err = stopRecorded(ctx, s.log, s.pidPath(), func(pid int) bool {
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		return err == nil && bytes.Contains(append([]byte{0}, environ...), marker)
	})
	if err != nil {
		return nil, fmt.Errorf("stop an earlier octavo: %w", err)
	}
	if err := checkAddrFree(cfg.Listen); err != nil {
		return nil, err
	}

	cmd := exec.Command(cfg.Octavo, "serve")
	cmd.Env = s.Environ()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start octavo serve: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		os.Remove(s.pidPath())
		close(s.exited)
	}()
	if err := os.WriteFile(s.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("write the octavo pid file: %w", err)
	}

	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(sidecarStartTimeout)
	for {
		resp, err := client.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.log.InfoContext(ctx, "octavo up", "url", s.URL, "pid", cmd.Process.Pid)
				return s, nil
			}
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("octavo serve exited during start-up: %s", s.LogTail(2000))
		case <-ctx.Done():
			_ = s.Stop()
			return nil, fmt.Errorf("wait for octavo serve: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("octavo serve did not respond at %s/healthz within %s: %s", s.URL, sidecarStartTimeout, s.LogTail(2000))
		}
	}
}

func (s *Sidecar) pidPath() string { return filepath.Join(s.Config.Dir, "octavo.pid") }

// Environ returns the environment of octavo commands for this sidecar: the
// caller's environment without proxy and OCTAVO_* variables, the settings
// derived from the config, then Config.Env.
func (s *Sidecar) Environ() []string {
	cfg := s.Config
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		if strings.HasSuffix(upper, "_PROXY") || strings.HasPrefix(upper, "OCTAVO_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"OCTAVO_LISTEN="+cfg.Listen,
		"OCTAVO_PUBLIC_URL=http://"+cfg.Listen+"/",
		"OCTAVO_FORGE_URL="+cfg.Gitea.URL+"/",
		"OCTAVO_FORGE_KIND=gitea",
		"OCTAVO_FORGE_TOKEN_FILE="+filepath.Join(cfg.Dir, "forge-token"),
		"OCTAVO_WEBHOOK_SECRET_FILE="+filepath.Join(cfg.Dir, "webhook-secret"),
		"OCTAVO_DATA_DIR="+filepath.Join(cfg.Dir, "data"),
		"OCTAVO_RUNNER="+cfg.Runner,
	)
	return append(env, cfg.Env...)
}

// Register runs `octavo register repo` with the sidecar's settings and
// returns its combined output.
func (s *Sidecar) Register(ctx context.Context, repo string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, s.Config.Octavo, "register", repo)
	cmd.Env = s.Environ()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("octavo register %s: %w: %s", repo, err, tail(out.Bytes(), 2000))
	}
	return out.String(), nil
}

// LogTail returns the last n bytes of the sidecar's log, for failure
// messages.
func (s *Sidecar) LogTail(n int) string {
	b, err := os.ReadFile(filepath.Join(s.Config.Dir, "octavo.log"))
	if err != nil {
		return "(no octavo.log: " + err.Error() + ")"
	}
	return tail(b, n)
}

// Stop sends SIGTERM to the sidecar and waits for it to exit, sending
// SIGKILL to its process group after 45 seconds. Runners it left behind in
// its process group are killed with it then. Stop is safe to call more
// than once.
func (s *Sidecar) Stop() error {
	if s == nil || s.cmd == nil {
		return nil
	}
	select {
	case <-s.exited:
		return nil
	default:
	}
	pid := s.cmd.Process.Pid
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop octavo pid %d: %w", pid, err)
	}
	select {
	case <-s.exited:
		s.log.Info("octavo stopped", "pid", pid)
		return nil
	case <-time.After(sidecarStopTimeout):
	}
	s.log.Warn("octavo ignored SIGTERM, killing its process group", "pid", pid, "waited", sidecarStopTimeout)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stop octavo pid %d: still running after SIGKILL", pid)
	}
}

// Kill ends the sidecar's process group at once with SIGKILL, as a crash
// would, and waits for the sidecar to exit.
func (s *Sidecar) Kill() {
	if s == nil || s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
	}
}
