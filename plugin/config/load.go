package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Secret is a setting value that must never appear in a log or an error.
type Secret string

// LogValue reports only whether the secret is set.
func (s Secret) LogValue() slog.Value {
	if s == "" {
		return slog.StringValue("unset")
	}
	return slog.StringValue("set")
}

// String hides the value from fmt verbs as well.
func (s Secret) String() string { return s.LogValue().String() }

// Config is the resolved configuration of octavo serve. Build it with
// [Load], which validates every value; a program that embeds octavo passes
// its own getenv function to Load.
type Config struct {
	Listen string
	// PublicURL always ends in "/"; its path is the prefix every route
	// and link lives under.
	PublicURL      *url.URL
	ForgeURL       *url.URL // nil when no forge is configured
	ForgeKind      string
	ForgeToken     Secret
	WebhookSecret  Secret
	WebhookMaxBody int64
	DataDir        string
	Database       Secret // DSN; empty means DataDir/octavo.db
	Runner         string
	MaxRuns        int
	RunTimeout     time.Duration
	ShutdownGrace  time.Duration
	SecretsFile    string
	StatusContext  string
	JobStatuses    bool
	CatchUp        bool
	CatchUpRepos   []string
	AllowedOrigins []string
	LogLevel       slog.Level

	// values holds every setting as text after resolution, for the
	// start-up log line.
	values map[string]string
}

// Prefix returns the path prefix of the public URL without the trailing
// slash: "" for a URL at the root, "/ci" for https://host/ci/.
func (c *Config) Prefix() string {
	if c.PublicURL == nil {
		return ""
	}
	return strings.TrimSuffix(c.PublicURL.Path, "/")
}

// DSN returns the database DSN, the SQLite file in the data folder when none
// is set.
func (c *Config) DSN() string {
	if c.Database != "" {
		return string(c.Database)
	}
	return filepath.Join(c.DataDir, "octavo.db")
}

// LogValue lists every setting with secrets reported as set or unset.
func (c *Config) LogValue() slog.Value {
	// A token or webhook secret read from its _file setting leaves the
	// setting itself empty, so the log reports the resolved value instead.
	resolved := map[string]Secret{"forge_token": c.ForgeToken, "webhook_secret": c.WebhookSecret}
	attrs := make([]slog.Attr, 0, len(Settings))
	for _, s := range Settings {
		v := c.values[s.Name]
		// Without a DSN the database is a file in the data folder. Its
		// path holds no credentials, so the log names the file in use.
		if s.Name == "database" && c.Database == "" {
			attrs = append(attrs, slog.String(s.Name, c.DSN()))
			continue
		}
		if s.Secret {
			secret := Secret(v)
			if r, ok := resolved[s.Name]; ok {
				secret = r
			}
			attrs = append(attrs, slog.Any(s.Name, secret))
			continue
		}
		attrs = append(attrs, slog.String(s.Name, v))
	}
	return slog.GroupValue(attrs...)
}

// Load resolves the settings from, in falling priority, the command-line
// args (without the program and subcommand name), the environment read
// through getenv, the JSON config file named by OCTAVO_CONFIG or -config, and
// the defaults of [Settings]. Errors name the flag or variable and the fix;
// flag.ErrHelp is returned for -h after the usage was written to out.
func Load(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("octavo serve", flag.ContinueOnError)
	fs.SetOutput(out)
	flags := make(map[string]*string, len(Settings))
	for _, s := range Settings {
		help := s.Description + " (env " + s.Env + ")"
		// The default only shows in -h output: a flag counts only when
		// it was set, so environment variables and the config file still
		// override the defaults.
		flags[s.Name] = fs.String(s.Flag, s.Default, help)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: octavo serve takes only flags", fs.Arg(0))
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })

	values := make(map[string]string, len(Settings))
	for _, s := range Settings {
		values[s.Name] = s.Default
	}

	configPath := getenv("OCTAVO_CONFIG")
	if setFlags["config"] {
		configPath = *flags["config"]
	}
	if configPath != "" {
		if err := readConfigFile(configPath, values); err != nil {
			return nil, err
		}
	}
	for _, s := range Settings {
		if v := getenv(s.Env); v != "" {
			values[s.Name] = v
		}
		if setFlags[s.Flag] {
			values[s.Name] = *flags[s.Name]
		}
	}
	return fromValues(values, getenv)
}

// readConfigFile overlays the JSON object in path onto values. Its keys are
// setting names, and its values are strings, numbers, booleans or lists.
func readConfigFile(path string, values map[string]string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file (OCTAVO_CONFIG): %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("config file %s is not a JSON object of setting names to values: %w", path, err)
	}
	for k, v := range m {
		if _, ok := Lookup(k); !ok || k == "config" {
			return fmt.Errorf("config file %s: unknown setting %q; use the names listed by octavo serve -h, such as listen or data_dir", path, k)
		}
		switch v := v.(type) {
		case string:
			values[k] = v
		case float64:
			values[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			values[k] = strconv.FormatBool(v)
		case []any:
			parts := make([]string, 0, len(v))
			for _, p := range v {
				parts = append(parts, fmt.Sprint(p))
			}
			values[k] = strings.Join(parts, ",")
		default:
			return fmt.Errorf("config file %s: setting %q has an unsupported value type; use a string, number, boolean or list", path, k)
		}
	}
	return nil
}

// settingError names a setting by its variable and flag, so the message
// fits whichever way the operator set it.
func settingError(name, format string, args ...any) error {
	s, _ := Lookup(name)
	return fmt.Errorf("%s (-%s): %s", s.Env, s.Flag, fmt.Sprintf(format, args...))
}

func fromValues(v map[string]string, getenv func(string) string) (*Config, error) {
	c := &Config{values: v}
	var errs []error
	fail := func(err error) { errs = append(errs, err) }

	c.Listen = v["listen"]
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		fail(settingError("listen", "invalid address %q; use host:port such as 127.0.0.1:8080", c.Listen))
	}

	public := v["public_url"]
	if public == "" {
		public = "http://" + c.Listen + "/"
		if host, _, err := net.SplitHostPort(c.Listen); err == nil && (host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
			fail(settingError("public_url", "missing, and listen address %q names no host to link to; set it to the URL browsers and the forge use, such as https://ci.example.com/", c.Listen))
		}
	}
	if u, err := parseURL(public); err != nil {
		fail(settingError("public_url", "%v", err))
	} else if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		fail(settingError("public_url", "URL %q has a query or fragment; use the base URL only, such as https://ci.example.com/ci/", public))
	} else {
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		c.PublicURL = u
	}

	if v["forge_url"] != "" {
		if u, err := parseURL(v["forge_url"]); err != nil {
			fail(settingError("forge_url", "%v", err))
		} else {
			c.ForgeURL = u
		}
	}

	c.ForgeKind = strings.ToLower(v["forge_kind"])
	if c.ForgeKind != "gitea" && c.ForgeKind != "forgejo" {
		fail(settingError("forge_kind", "invalid value %q; use gitea or forgejo", v["forge_kind"]))
	}

	token, err := secretValue(v, "forge_token", "forge_token_file")
	if err != nil {
		fail(err)
	}
	c.ForgeToken = token

	secret, err := secretValue(v, "webhook_secret", "webhook_secret_file")
	if err != nil {
		fail(err)
	} else if secret == "" {
		fail(errors.New("OCTAVO_WEBHOOK_SECRET is missing: set it (or OCTAVO_WEBHOOK_SECRET_FILE) to the secret configured on the forge's webhook"))
	}
	c.WebhookSecret = secret

	if n, err := strconv.ParseInt(v["webhook_max_body"], 10, 64); err != nil || n < 1024 {
		fail(settingError("webhook_max_body", "invalid size %q; use a number of bytes of at least 1024", v["webhook_max_body"]))
	} else {
		c.WebhookMaxBody = n
	}

	c.DataDir = v["data_dir"]
	if c.DataDir == "" {
		fail(settingError("data_dir", "empty; set a folder such as ./octavo-data"))
	}
	c.Database = Secret(v["database"])
	if scheme, _, ok := strings.Cut(v["database"], "://"); ok && !knownDatabaseSchemes[strings.ToLower(scheme)] {
		// The DSN may carry a password, so only its scheme is shown.
		fail(settingError("database", "unsupported DSN scheme %q; use a postgres:// URL or a SQLite file path", scheme))
	}
	c.Runner = v["runner"]

	if n, err := strconv.Atoi(v["max_runs"]); err != nil || n < 1 || n > maxMaxRuns {
		fail(settingError("max_runs", "invalid value %q; use a whole number from 1 to %d", v["max_runs"], maxMaxRuns))
	} else {
		c.MaxRuns = n
	}
	c.RunTimeout = parseDuration(v, "run_timeout", fail)
	c.ShutdownGrace = parseDuration(v, "shutdown_grace", fail)

	c.SecretsFile = v["secrets_file"]
	c.StatusContext = v["status_context"]
	if c.StatusContext == "" {
		fail(settingError("status_context", "empty; use a short name such as octavo"))
	}
	c.JobStatuses = parseBool(v, "job_statuses", fail)
	c.CatchUp = parseBool(v, "catch_up", fail)
	c.CatchUpRepos = splitList(v["catch_up_repos"])
	for _, r := range c.CatchUpRepos {
		if owner, name, ok := strings.Cut(r, "/"); !ok || !validRepoPart(owner) || !validRepoPart(name) {
			fail(settingError("catch_up_repos", "invalid repository %q; use OWNER/NAME", r))
		}
	}
	c.AllowedOrigins = splitList(v["allowed_origins"])
	for _, o := range c.AllowedOrigins {
		if !validOrigin(o) {
			fail(settingError("allowed_origins", "invalid origin %q; use http(s)://host[:port] or host[:port]", o))
		}
	}

	if err := c.LogLevel.UnmarshalText([]byte(v["log_level"])); err != nil {
		fail(settingError("log_level", "invalid level %q; use debug, info, warn or error", v["log_level"]))
	}
	return c, errors.Join(errs...)
}

// maxMaxRuns is the highest accepted max_runs. Each run is a runner
// process tree and a worker goroutine, so a larger value is a typing
// mistake rather than a plan.
const maxMaxRuns = 1024

// knownDatabaseSchemes lists the URL schemes a database DSN may have.
// Paths without a scheme, file: and sqlite: DSNs are SQLite files.
var knownDatabaseSchemes = map[string]bool{"postgres": true, "postgresql": true, "file": true, "sqlite": true}

// validRepoPart reports whether s can be an owner or repository name on
// Gitea and Forgejo: ASCII letters, digits, '-', '_' and '.', but not "."
// or "..".
func validRepoPart(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// validOrigin reports whether o is an http or https origin without a path,
// or a bare host[:port].
func validOrigin(o string) bool {
	if !strings.Contains(o, "://") {
		return !strings.ContainsAny(o, "/?#@ \t")
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return false
	}
	return (u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == ""
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q; use an absolute http or https URL such as https://git.example.com/", s)
	}
	return u, nil
}

func parseDuration(v map[string]string, name string, fail func(error)) time.Duration {
	d, err := time.ParseDuration(v[name])
	if err != nil || d <= 0 {
		fail(settingError(name, "invalid duration %q; use a positive Go duration such as 90s or 1h30m", v[name]))
		return 0
	}
	return d
}

func parseBool(v map[string]string, name string, fail func(error)) bool {
	b, err := strconv.ParseBool(v[name])
	if err != nil {
		fail(settingError(name, "invalid boolean %q; use true or false", v[name]))
	}
	return b
}

// secretValue returns the inline secret, or the content of the file setting
// without its trailing newline when the inline one is empty.
func secretValue(v map[string]string, inline, file string) (Secret, error) {
	if v[inline] != "" {
		return Secret(v[inline]), nil
	}
	path := v[file]
	if path == "" {
		return "", nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", settingError(file, "read secret file: %v", err)
	}
	s := strings.TrimRight(string(raw), "\r\n")
	if s == "" {
		return "", settingError(file, "file %s is empty; write the secret into it", path)
	}
	return Secret(s), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
