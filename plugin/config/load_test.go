package config

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadPriorityAndDefaults(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "octavo.json")
	raw, _ := json.Marshal(map[string]any{"max_runs": 7, "run_timeout": "5m", "catch_up_repos": []string{"a/b"}})
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{
		"OCTAVO_WEBHOOK_SECRET_FILE": secretFile,
		"OCTAVO_CONFIG":              cfgFile,
		"OCTAVO_MAX_RUNS":            "3",
		"OCTAVO_PUBLIC_URL":          "https://forge.example.com/ci",
	}
	c, err := Load([]string{"-max-runs", "4"}, envOf(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxRuns != 4 {
		t.Errorf("MaxRuns = %d, want the flag's 4", c.MaxRuns)
	}
	if c.RunTimeout != 5*time.Minute {
		t.Errorf("RunTimeout = %v, want the config file's 5m", c.RunTimeout)
	}
	if c.WebhookSecret != "s3cret" {
		t.Errorf("webhook secret from file has %d bytes, want 6 without the newline", len(c.WebhookSecret))
	}
	if c.Prefix() != "/ci" || c.PublicURL.String() != "https://forge.example.com/ci/" {
		t.Errorf("public URL = %s, prefix %q, want https://forge.example.com/ci/ and /ci", c.PublicURL, c.Prefix())
	}
	if c.Listen != "127.0.0.1:8080" || !c.CatchUp || c.ForgeKind != "gitea" {
		t.Errorf("defaults = %q %v %q, want 127.0.0.1:8080 true gitea", c.Listen, c.CatchUp, c.ForgeKind)
	}
	if len(c.CatchUpRepos) != 1 || c.CatchUpRepos[0] != "a/b" {
		t.Errorf("CatchUpRepos = %v, want [a/b]", c.CatchUpRepos)
	}
}

func TestLoadLogRedactsSecrets(t *testing.T) {
	env := map[string]string{
		"OCTAVO_WEBHOOK_SECRET": "hook-secret-value",
		"OCTAVO_FORGE_TOKEN":    "token-value",
		"OCTAVO_DATABASE":       "postgres://u:pw-value@127.0.0.1/db",
	}
	c, err := Load(nil, envOf(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	out := buf.String()
	for _, secret := range []string{"hook-secret-value", "token-value", "pw-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line %s contains a secret", out)
		}
	}
	if !strings.Contains(out, `"webhook_secret":"set"`) {
		t.Errorf("log line %s does not report webhook_secret as set", out)
	}
}

func TestLoadLogNamesDefaultDatabaseFile(t *testing.T) {
	env := map[string]string{
		"OCTAVO_WEBHOOK_SECRET": "hook-secret-value",
		"OCTAVO_DATA_DIR":       "/var/lib/octavo",
	}
	c, err := Load(nil, envOf(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	if want := `"database":"/var/lib/octavo/octavo.db"`; !strings.Contains(buf.String(), want) {
		t.Errorf("log line %s does not contain %s", buf.String(), want)
	}
}

func TestLoadLogReportsSecretsFromFilesAsSet(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(tokenFile, []byte("token-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte("secret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OCTAVO_FORGE_TOKEN_FILE": tokenFile, "OCTAVO_WEBHOOK_SECRET_FILE": secretFile}
	c, err := Load(nil, envOf(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", c)
	out := buf.String()
	for _, want := range []string{`"forge_token":"set"`, `"webhook_secret":"set"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %s does not contain %s", out, want)
		}
	}
	for _, secret := range []string{"token-from-file", "secret-from-file"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line %s contains a secret", out)
		}
	}
}

func TestLoadErrorsNameTheSetting(t *testing.T) {
	base := map[string]string{"OCTAVO_WEBHOOK_SECRET": "x"}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing webhook secret", map[string]string{}, "OCTAVO_WEBHOOK_SECRET is missing"},
		{"bad public url", map[string]string{"OCTAVO_PUBLIC_URL": "ftp//x"}, "OCTAVO_PUBLIC_URL (-public-url): invalid URL"},
		{"bad forge url", map[string]string{"OCTAVO_FORGE_URL": "git.example.com"}, "OCTAVO_FORGE_URL (-forge-url): invalid URL"},
		{"bad duration", map[string]string{"OCTAVO_RUN_TIMEOUT": "10"}, "OCTAVO_RUN_TIMEOUT (-run-timeout): invalid duration \"10\""},
		{"bad max runs", map[string]string{"OCTAVO_MAX_RUNS": "0"}, "OCTAVO_MAX_RUNS (-max-runs)"},
		{"bad forge kind", map[string]string{"OCTAVO_FORGE_KIND": "github"}, "use gitea or forgejo"},
		{"missing secret file", map[string]string{"OCTAVO_WEBHOOK_SECRET": "", "OCTAVO_WEBHOOK_SECRET_FILE": "/nonexistent/x"}, "OCTAVO_WEBHOOK_SECRET_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			if tt.name != "missing webhook secret" {
				for k, v := range base {
					env[k] = v
				}
			}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := Load(nil, envOf(env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSecretsForRepo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.json")
	raw := `{"acme/*":{"A":"owner","B":"owner"},"acme/app":{"B":"repo"},"other/x":{"C":"no"}}`
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	got := s.For("acme/app")
	if got["A"] != "owner" || got["B"] != "repo" || len(got) != 2 {
		t.Errorf("For(acme/app) = %v, want A=owner B=repo", got)
	}
	if len(s.For("nobody/x")) != 0 {
		t.Errorf("For(nobody/x) = %v, want none", s.For("nobody/x"))
	}

	if err := os.WriteFile(path, []byte(`{"bad":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecrets(path); err == nil || !strings.Contains(err.Error(), "OWNER/NAME") {
		t.Errorf("LoadSecrets of a bad key = %v, want an error naming OWNER/NAME", err)
	}
}
