// Package config holds the sidecar's settings: one table, [Settings], is the
// source for the command-line flags, the environment variables, the optional
// config file, the start-up log line and the plugin.json manifest, so the
// binary and the manifest cannot drift apart.
package config

// Kind is the value type of a setting, as plugin.json names it.
type Kind string

// Setting kinds.
const (
	KindString   Kind = "string"
	KindInt      Kind = "int"
	KindBool     Kind = "bool"
	KindDuration Kind = "duration" // a Go duration such as "90s" or "1h30m"
	KindURL      Kind = "url"
	KindPath     Kind = "path"
	KindList     Kind = "list" // comma-separated values
)

// Setting describes one configuration value. Flag is the command-line flag
// without dashes, Env the environment variable. Default is the value as
// text; an empty Default means unset. Secret settings are never logged or
// printed, only reported as set or unset.
type Setting struct {
	Name        string `json:"name"`
	Flag        string `json:"flag"`
	Env         string `json:"env"`
	Type        Kind   `json:"type"`
	Default     string `json:"default"`
	Secret      bool   `json:"secret"`
	Description string `json:"description"`
}

// Settings lists every setting of octavo serve in the order help text and
// plugin.json show them.
var Settings = []Setting{
	{Name: "config", Flag: "config", Env: "OCTAVO_CONFIG", Type: KindPath,
		Description: "Optional JSON file of setting names to values; flags and environment variables override it."},
	{Name: "listen", Flag: "listen", Env: "OCTAVO_LISTEN", Type: KindString, Default: "127.0.0.1:8080",
		Description: "Address the HTTP server listens on (host:port)."},
	{Name: "public_url", Flag: "public-url", Env: "OCTAVO_PUBLIC_URL", Type: KindURL,
		Description: "URL at which the forge and browsers reach octavo, including any path prefix; used for the webhook URL, links and commit status target_url. Defaults to http://LISTEN/."},
	{Name: "forge_url", Flag: "forge-url", Env: "OCTAVO_FORGE_URL", Type: KindURL,
		Description: "Base URL of the Gitea or Forgejo instance, such as https://git.example.com/."},
	{Name: "forge_kind", Flag: "forge-kind", Env: "OCTAVO_FORGE_KIND", Type: KindString, Default: "gitea",
		Description: "Forge software: gitea or forgejo."},
	{Name: "forge_token", Flag: "forge-token", Env: "OCTAVO_FORGE_TOKEN", Type: KindString, Secret: true,
		Description: "Forge API token used to fetch repositories, post commit statuses and register webhooks."},
	{Name: "forge_token_file", Flag: "forge-token-file", Env: "OCTAVO_FORGE_TOKEN_FILE", Type: KindPath,
		Description: "File containing the forge API token; a trailing newline is ignored. Used when forge_token is empty."},
	{Name: "webhook_secret", Flag: "webhook-secret", Env: "OCTAVO_WEBHOOK_SECRET", Type: KindString, Secret: true,
		Description: "Shared secret the forge signs webhook deliveries with (HMAC-SHA256). Required."},
	{Name: "webhook_secret_file", Flag: "webhook-secret-file", Env: "OCTAVO_WEBHOOK_SECRET_FILE", Type: KindPath,
		Description: "File containing the webhook secret; a trailing newline is ignored. Used when webhook_secret is empty."},
	{Name: "webhook_max_body", Flag: "webhook-max-body", Env: "OCTAVO_WEBHOOK_MAX_BODY", Type: KindInt, Default: "26214400",
		Description: "Maximum webhook request body size in bytes; larger deliveries are rejected with 413."},
	{Name: "data_dir", Flag: "data-dir", Env: "OCTAVO_DATA_DIR", Type: KindPath, Default: "./octavo-data",
		Description: "Folder for the SQLite database, repository mirrors and run workspaces."},
	{Name: "database", Flag: "database", Env: "OCTAVO_DATABASE", Type: KindString, Secret: true,
		Description: "Database DSN: a SQLite file path, or a postgres:// URL for several replicas. Defaults to DATA_DIR/octavo.db."},
	{Name: "runner", Flag: "runner", Env: "OCTAVO_RUNNER", Type: KindPath,
		Description: "Path of the octavo-runner binary. Defaults to octavo-runner next to the octavo binary, then on PATH."},
	{Name: "max_runs", Flag: "max-runs", Env: "OCTAVO_MAX_RUNS", Type: KindInt, Default: "2",
		Description: "Maximum number of runs executing at once in this process."},
	{Name: "run_timeout", Flag: "run-timeout", Env: "OCTAVO_RUN_TIMEOUT", Type: KindDuration, Default: "1h",
		Description: "Time after which a run is stopped and marked timed-out."},
	{Name: "shutdown_grace", Flag: "shutdown-grace", Env: "OCTAVO_SHUTDOWN_GRACE", Type: KindDuration, Default: "30s",
		Description: "On SIGTERM or SIGINT, how long active runs may continue before they are stopped and left to start-up reconciliation."},
	{Name: "secrets_file", Flag: "secrets-file", Env: "OCTAVO_SECRETS_FILE", Type: KindPath,
		Description: "JSON file mapping OWNER/NAME or OWNER/* to an object of secret name to value; a run receives only its own repository's secrets."},
	{Name: "status_context", Flag: "status-context", Env: "OCTAVO_STATUS_CONTEXT", Type: KindString, Default: "octavo",
		Description: "Commit status context. Branch protection rules refer to it, so keep it stable."},
	{Name: "job_statuses", Flag: "job-statuses", Env: "OCTAVO_JOB_STATUSES", Type: KindBool, Default: "false",
		Description: "Also post one commit status per job, with context STATUS_CONTEXT/JOB."},
	{Name: "catch_up", Flag: "catch-up", Env: "OCTAVO_CATCH_UP", Type: KindBool, Default: "true",
		Description: "At start, queue runs for branch heads pushed while octavo was down."},
	{Name: "catch_up_repos", Flag: "catch-up-repos", Env: "OCTAVO_CATCH_UP_REPOS", Type: KindList,
		Description: "Repositories (OWNER/NAME, comma-separated) that catch-up checks besides those that already have runs."},
	{Name: "allowed_origins", Flag: "allowed-origins", Env: "OCTAVO_ALLOWED_ORIGINS", Type: KindList,
		Description: "Extra origins (scheme://host[:port], comma-separated) allowed to open the live log websocket; the public URL's origin is always allowed."},
	{Name: "log_level", Flag: "log-level", Env: "OCTAVO_LOG_LEVEL", Type: KindString, Default: "info",
		Description: "Log level: debug, info, warn or error."},
}

// Lookup returns the setting with the given name and whether it exists.
func Lookup(name string) (Setting, bool) {
	for _, s := range Settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}
