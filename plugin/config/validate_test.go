package config

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestLoadRejectsMoreBadValues covers settings that Load once accepted
// and that failed later, or never: a public URL with a query or fragment
// broke every link, a DSN of an unknown scheme became a SQLite file named
// after it in the working folder, a huge OCTAVO_MAX_RUNS started that many
// worker goroutines, and an invalid allowed origin failed later with an
// error that named no setting. A listen address on all interfaces without
// a public URL made links, commit status URLs and the websocket's allowed
// origin point at http://0.0.0.0:PORT/. A catch-up repository named
// "acme/.." passed too.
func TestLoadRejectsMoreBadValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"public url with a query", map[string]string{"OCTAVO_PUBLIC_URL": "https://ci.example.com/ci/?x=1"}, "OCTAVO_PUBLIC_URL (-public-url)"},
		{"public url with a fragment", map[string]string{"OCTAVO_PUBLIC_URL": "https://ci.example.com/#top"}, "OCTAVO_PUBLIC_URL (-public-url)"},
		{"database of an unknown scheme", map[string]string{"OCTAVO_DATABASE": "mysql://db.example.com/octavo"}, "OCTAVO_DATABASE (-database)"},
		{"max runs above the limit", map[string]string{"OCTAVO_MAX_RUNS": "99999999999"}, "OCTAVO_MAX_RUNS (-max-runs)"},
		{"all interfaces without a public url", map[string]string{"OCTAVO_LISTEN": "0.0.0.0:8080"}, "OCTAVO_PUBLIC_URL (-public-url)"},
		{"empty host without a public url", map[string]string{"OCTAVO_LISTEN": ":8080"}, "OCTAVO_PUBLIC_URL (-public-url)"},
		{"ipv6 any without a public url", map[string]string{"OCTAVO_LISTEN": "[::]:8080"}, "OCTAVO_PUBLIC_URL (-public-url)"},
		{"catch-up repository of two dots", map[string]string{"OCTAVO_CATCH_UP_REPOS": "acme/.."}, "OCTAVO_CATCH_UP_REPOS (-catch-up-repos)"},
		{"catch-up repository with a space", map[string]string{"OCTAVO_CATCH_UP_REPOS": "acme/my app"}, "OCTAVO_CATCH_UP_REPOS (-catch-up-repos)"},
		{"allowed origin with a space", map[string]string{"OCTAVO_ALLOWED_ORIGINS": "http://a b"}, "OCTAVO_ALLOWED_ORIGINS (-allowed-origins)"},
		{"allowed origin with a path", map[string]string{"OCTAVO_ALLOWED_ORIGINS": "https://a.example.com/x"}, "OCTAVO_ALLOWED_ORIGINS (-allowed-origins)"},
		{"allowed origin of another scheme", map[string]string{"OCTAVO_ALLOWED_ORIGINS": "ftp://a.example.com"}, "OCTAVO_ALLOWED_ORIGINS (-allowed-origins)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"OCTAVO_WEBHOOK_SECRET": "x"}
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := Load(nil, envOf(env), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want it to contain %q", err, tt.want)
			}
		})
	}

	t.Run("accepted values still load", func(t *testing.T) {
		env := map[string]string{
			"OCTAVO_WEBHOOK_SECRET":  "x",
			"OCTAVO_DATABASE":        "postgres://u@127.0.0.1/octavo?sslmode=disable",
			"OCTAVO_MAX_RUNS":        "64",
			"OCTAVO_ALLOWED_ORIGINS": "https://a.example.com, b.example.com:8443",
			"OCTAVO_LISTEN":          "0.0.0.0:8080",
			"OCTAVO_PUBLIC_URL":      "https://ci.example.com/",
			"OCTAVO_CATCH_UP_REPOS":  "acme/app, Acme-2/app.go_v2",
		}
		if _, err := Load(nil, envOf(env), &bytes.Buffer{}); err != nil {
			t.Errorf("Load: %v", err)
		}
		for _, dsn := range []string{"/var/lib/octavo/octavo.db", "file:octavo.db", "sqlite:octavo.db", "host=127.0.0.1 dbname=octavo"} {
			env["OCTAVO_DATABASE"] = dsn
			if _, err := Load(nil, envOf(env), &bytes.Buffer{}); err != nil {
				t.Errorf("Load with database %q: %v", dsn, err)
			}
		}
	})
}

// TestHelpShowsDefaults checks that -h prints each setting's default. The
// help once showed none, so an operator could not tell what an unset
// variable meant.
func TestHelpShowsDefaults(t *testing.T) {
	var out bytes.Buffer
	_, err := Load([]string{"-h"}, envOf(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Load(-h) error = %v, want flag.ErrHelp", err)
	}
	for _, s := range Settings {
		if s.Default == "" || s.Secret {
			continue
		}
		if want := "(default " + `"` + s.Default + `"`; !strings.Contains(out.String(), want) {
			t.Errorf("help for -%s does not contain %s; help:\n%s", s.Flag, want, out.String())
		}
	}
}
