package giteatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Timeouts of the instance life cycle. Start-up on a fresh dir took 2 to 3
// seconds on a 2-core machine, migrations included. The bounds are wide so
// that a loaded CI machine still passes.
const (
	startTimeout = 90 * time.Second
	stopTimeout  = 30 * time.Second
	cliTimeout   = 60 * time.Second
	// apiTimeout bounds one API request. Creating a repository with
	// auto_init runs git and Gitea's hooks inside the request, which is
	// slow on an overloaded machine.
	apiTimeout = 60 * time.Second
)

// adminName is the admin user every instance gets.
const adminName = "octavo-admin"

// Instance is a running Gitea started by [Start]. Its state (app.ini, the
// SQLite database, repositories, logs, the admin credentials and token)
// lives under Dir, so a later Start on the same Dir reuses it.
type Instance struct {
	URL      string // base URL without a trailing slash, http://127.0.0.1:PORT
	Token    string // API token of Admin with scope "all"
	Admin    string
	Password string
	Dir      string
	Port     int

	bin    Binary
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait returned
	log    *slog.Logger
	client *http.Client
}

// credentials are the admin login and token that Start keeps in DIR/credentials.json (mode 0600).
type credentials struct {
	Admin    string `json:"admin"`
	Password string `json:"password"`
	Token    string `json:"token"`
}

// secrets are Gitea's own keys, generated once per dir so a restarted
// instance accepts its old tokens and sessions.
type secrets struct {
	SecretKey     string `json:"secret_key"`
	InternalToken string `json:"internal_token"`
	JWTSecret     string `json:"jwt_secret"`
}

// Start runs Gitea from bin with its state in dir, listening on
// 127.0.0.1:port, and returns once its API responds and an admin user with a
// working token exists. A Gitea left running for the same dir by an earlier
// process (recorded in dir/gitea.pid and recognised by its command line) is
// stopped first. The caller must call [Instance.Stop]. log may be nil.
func Start(ctx context.Context, bin Binary, dir string, port int, log *slog.Logger) (*Instance, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("invalid gitea port %d: use 1-65535", port)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve the gitea dir: %w", err)
	}
	for _, sub := range []string{"custom/conf", "data", "repos", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("create the gitea dir: %w", err)
		}
	}

	inst := &Instance{
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		Dir:    dir,
		Port:   port,
		bin:    bin,
		log:    log.With("component", "gitea", "dir", dir),
		client: &http.Client{Timeout: apiTimeout, Transport: &http.Transport{Proxy: nil}},
	}
	if err := inst.stopLeftover(ctx); err != nil {
		return nil, err
	}
	if err := checkPortFree(port); err != nil {
		return nil, err
	}

	sec, err := inst.ensureSecrets(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(inst.configPath(), []byte(appIni(inst, sec)), 0o600); err != nil {
		return nil, fmt.Errorf("write app.ini: %w", err)
	}
	if err := inst.launch(ctx); err != nil {
		return nil, err
	}
	if err := inst.ensureAdmin(ctx); err != nil {
		_ = inst.Stop()
		return nil, err
	}
	return inst, nil
}

func (i *Instance) configPath() string { return filepath.Join(i.Dir, "custom", "conf", "app.ini") }
func (i *Instance) pidPath() string    { return filepath.Join(i.Dir, "gitea.pid") }

// DBPath returns the path of the instance's SQLite database.
func (i *Instance) DBPath() string { return filepath.Join(i.Dir, "data", "gitea.db") }

// environ is the environment of every gitea process: no proxy settings, the
// work dir, and the run-as-root switch when we are root.
func (i *Instance) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "GITEA_WORK_DIR", "GITEA_CUSTOM":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "GITEA_WORK_DIR="+i.Dir, "NO_PROXY=127.0.0.1,localhost")
	if os.Geteuid() == 0 {
		// Gitea refuses to run as root without both this and the app.ini key.
		env = append(env, "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true")
	}
	return env
}

// cli runs a gitea subcommand against this instance's config and returns
// its standard output.
func (i *Instance) cli(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()

	full := append([]string{"--config", i.configPath(), "--work-path", i.Dir}, args...)
	cmd := exec.CommandContext(ctx, i.bin.Path, full...)
	cmd.Dir = i.Dir
	cmd.Env = i.environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("run gitea %s: %w: %s", args[0], err, tail(append(stdout.Bytes(), stderr.Bytes()...), 1000))
	}
	return stdout.String(), nil
}

func (i *Instance) ensureSecrets(ctx context.Context) (secrets, error) {
	path := filepath.Join(i.Dir, "secrets.json")
	var sec secrets
	if err := readJSON(path, &sec); err == nil && sec.SecretKey != "" {
		return sec, nil
	}

	// Gitea's own generator, so each value has the format Gitea expects.
	for _, s := range []struct {
		name string
		dst  *string
	}{{"SECRET_KEY", &sec.SecretKey}, {"INTERNAL_TOKEN", &sec.InternalToken}, {"JWT_SECRET", &sec.JWTSecret}} {
		cmd := exec.CommandContext(ctx, i.bin.Path, "generate", "secret", s.name)
		cmd.Env = i.environ()
		out, err := cmd.Output()
		if err != nil {
			return sec, fmt.Errorf("generate gitea secret %s: %w", s.name, err)
		}
		*s.dst = strings.TrimSpace(string(out))
	}
	if err := writeJSON(path, sec); err != nil {
		return sec, err
	}
	return sec, nil
}

// appIni renders the configuration: everything on 127.0.0.1, SSH, mail,
// the update checker, Actions and packages off, and webhooks to loopback
// allowed (1.26 reads that list from [webhook]; its default, "external",
// rejects 127.0.0.1).
func appIni(i *Instance, sec secrets) string {
	rootLine := ""
	if os.Geteuid() == 0 {
		rootLine = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true"
	}
	// Gitea exits unless RUN_USER names the user it runs as.
	runUser := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		runUser = u.Username
	}
	var b strings.Builder
	fmt.Fprintf(&b, `; generated by octavo's giteatest on every start
APP_NAME = octavo-test-gitea
RUN_MODE = prod
RUN_USER = %[1]s
WORK_PATH = %[2]s
%[3]s

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[4]d
DOMAIN = 127.0.0.1
ROOT_URL = %[5]s/
LOCAL_ROOT_URL = %[5]s/
APP_DATA_PATH = %[2]s/data
STATIC_ROOT_PATH = %[6]s
DISABLE_SSH = true
START_SSH_SERVER = false
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = %[2]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL
SQLITE_TIMEOUT = 5000

[repository]
ROOT = %[2]s/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = %[7]s
INTERNAL_TOKEN = %[8]s
PASSWORD_CHECK_PWN = false

[oauth2]
JWT_SECRET = %[9]s

[service]
DISABLE_REGISTRATION = true
ENABLE_NOTIFY_MAIL = false

[mailer]
ENABLED = false

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 5

[actions]
ENABLED = false

[packages]
ENABLED = false

[cron.update_checker]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[log]
MODE = file
LEVEL = Info
ROOT_PATH = %[2]s/log
`, runUser, i.Dir, rootLine, i.Port, i.URL, i.bin.StaticRoot, sec.SecretKey, sec.InternalToken, sec.JWTSecret)
	return b.String()
}

// launch starts gitea web (see [childAttr] for how it is detached) and
// waits for its API.
func (i *Instance) launch(ctx context.Context) error {
	logFile, err := os.OpenFile(filepath.Join(i.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the gitea console log: %w", err)
	}
	defer logFile.Close()

	cmd := exec.Command(i.bin.Path, "web", "--config", i.configPath(), "--work-path", i.Dir)
	cmd.Dir = i.Dir
	cmd.Env = i.environ()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start gitea web: %w", err)
	}
	i.cmd = cmd
	i.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(i.exited)
	}()
	if err := os.WriteFile(i.pidPath(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = i.Stop()
		return fmt.Errorf("write the gitea pid file: %w", err)
	}
	i.log.InfoContext(ctx, "gitea starting", "url", i.URL, "pid", cmd.Process.Pid)

	deadline := time.Now().Add(startTimeout)
	for {
		if i.responds(ctx) {
			i.log.InfoContext(ctx, "gitea up", "url", i.URL)
			return nil
		}
		select {
		case <-i.exited:
			return fmt.Errorf("gitea exited during start-up; see %s/log/stdout.log and gitea.log", i.Dir)
		case <-ctx.Done():
			_ = i.Stop()
			return fmt.Errorf("wait for gitea: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = i.Stop()
			return fmt.Errorf("gitea did not respond at %s/api/v1/version within %s; see %s/log/", i.URL, startTimeout, i.Dir)
		}
	}
}

func (i *Instance) responds(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, i.URL+"/api/v1/version", nil)
	if err != nil {
		return false
	}
	resp, err := i.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

var tokenPattern = regexp.MustCompile(`(?m)^[0-9a-f]{40}$`)

// ensureAdmin creates the admin user on the first start of a dir and keeps
// a token that the API accepts.
func (i *Instance) ensureAdmin(ctx context.Context) error {
	path := filepath.Join(i.Dir, "credentials.json")
	var cred credentials
	if err := readJSON(path, &cred); err != nil || cred.Admin == "" {
		cred = credentials{Admin: adminName, Password: randomHex(12)}
		_, err := i.cli(ctx, "admin", "user", "create", "--admin", "--username", cred.Admin,
			"--password", cred.Password, "--email", cred.Admin+"@example.test", "--must-change-password=false")
		if err != nil {
			return fmt.Errorf("create the gitea admin user: %w", err)
		}
		if err := writeJSON(path, cred); err != nil {
			return err
		}
	}
	i.Admin, i.Password = cred.Admin, cred.Password

	if cred.Token != "" {
		i.Token = cred.Token
		if err := i.Do(ctx, http.MethodGet, "/user", nil, nil); err == nil {
			return nil
		}
	}
	out, err := i.cli(ctx, "admin", "user", "generate-access-token", "--username", cred.Admin,
		"--token-name", "octavo-"+randomHex(6), "--scopes", "all", "--raw")
	if err != nil {
		return fmt.Errorf("create a gitea access token: %w", err)
	}
	token := tokenPattern.FindString(out)
	if token == "" {
		return errors.New("create a gitea access token: no 40-digit hex token in the output of generate-access-token")
	}
	i.Token = token
	if err := i.Do(ctx, http.MethodGet, "/user", nil, nil); err != nil {
		return fmt.Errorf("check the new gitea token: %w", err)
	}
	cred.Token = token
	return writeJSON(path, cred)
}

// Stop ends the instance: SIGTERM to its process, then SIGKILL if it has
// not exited within 30 seconds. It signals only the process Start launched
// and is safe to call more than once.
func (i *Instance) Stop() error {
	if i.cmd == nil || i.cmd.Process == nil {
		return nil
	}
	defer os.Remove(i.pidPath())

	select {
	case <-i.exited:
		return nil
	default:
	}
	if err := i.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop gitea pid %d: %w", i.cmd.Process.Pid, err)
	}
	select {
	case <-i.exited:
		i.log.Info("gitea stopped", "pid", i.cmd.Process.Pid)
		return nil
	case <-time.After(stopTimeout):
	}
	i.log.Warn("gitea ignored SIGTERM, sending SIGKILL", "pid", i.cmd.Process.Pid, "waited", stopTimeout)
	_ = i.cmd.Process.Kill()
	select {
	case <-i.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("stop gitea pid %d: still running after SIGKILL", i.cmd.Process.Pid)
	}
}

// stopLeftover stops a gitea that an earlier process started for this dir
// and did not stop (it crashed or was killed). The pid is trusted only when
// /proc shows a "gitea web" with this dir's app.ini, so a recycled pid is
// never signalled.
func (i *Instance) stopLeftover(ctx context.Context) error {
	return stopRecorded(ctx, i.log, i.pidPath(), func(pid int) bool {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && bytes.Contains(cmdline, []byte("\x00web\x00")) && bytes.Contains(cmdline, []byte(i.configPath()))
	})
}

// stopRecorded stops the process whose pid is in pidPath if ours reports it
// is the process that file was written for, then removes the file.
func stopRecorded(ctx context.Context, log *slog.Logger, pidPath string, ours func(pid int) bool) error {
	raw, err := os.ReadFile(pidPath)
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 || !processAlive(pid) || !ours(pid) {
		return os.Remove(pidPath)
	}

	log.InfoContext(ctx, "stopping a process left running by an earlier start", "pid", pid, "pid_file", pidPath)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(stopTimeout)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			break
		}
		// Polling, because a process we did not start has no wait handle.
		time.Sleep(100 * time.Millisecond)
	}
	return os.Remove(pidPath)
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := bytes.Cut(stat, []byte(") "))
	return ok && len(rest) > 0 && rest[0] != 'Z'
}

func checkPortFree(port int) error {
	return checkAddrFree("127.0.0.1:" + strconv.Itoa(port))
}

// checkAddrFree returns an error naming addr when something listens there.
func checkAddrFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("address %s is in use: %w (stop what listens there or pick another port)", addr, err)
	}
	return l.Close()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
