package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// PushFields are the fields of the push source payload. Every one is an
// attribute of the octavo/push struct; a field the payload lacks is None.
// branch is set for a branch push and tag for a tag push.
var PushFields = []string{"sha", "ref", "branch", "tag", "before", "pusher", "repo", "clone_url", "compare_url", "message"}

// Payload is a source payload as decoded from JSON.
type Payload map[string]any

// ReadPayload reads a source payload file: one JSON object. Every
// [PushFields] entry present must be a string or null.
func ReadPayload(path string) (Payload, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read source payload: %w", err)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parse source payload %s: want one JSON object: %w", path, err)
	}
	if p == nil {
		return nil, fmt.Errorf("parse source payload %s: want a JSON object, got null", path)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse source payload %s: want one JSON object, found more after it", path)
	}
	for _, name := range PushFields {
		switch p[name].(type) {
		case nil, string:
		default:
			return nil, fmt.Errorf("parse source payload %s: field %q is %s, want a string or null", path, name, JSONKind(p[name]))
		}
	}
	return p, nil
}

// JSONKind names the JSON type of v, a value decoded by encoding/json into
// any, for messages: "a number", "an array" and so on.
func JSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// GitPushPayload derives a push payload from the git checkout in dir, for
// local runs without --source. It returns an empty payload when dir is not
// a git work tree or git is missing. Fields git cannot tell (before,
// compare_url) stay unset, and credentials in the origin URL are dropped.
func GitPushPayload(ctx context.Context, dir string) Payload {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}

	p := Payload{}
	sha := git("rev-parse", "--verify", "-q", "HEAD")
	if sha == "" {
		return p
	}
	p["sha"] = sha
	if branch := git("symbolic-ref", "-q", "--short", "HEAD"); branch != "" {
		p["branch"] = branch
		p["ref"] = "refs/heads/" + branch
	} else if tag := git("describe", "--tags", "--exact-match", "HEAD"); tag != "" {
		p["tag"] = tag
		p["ref"] = "refs/tags/" + tag
	}
	if msg := git("log", "-1", "--format=%B", "HEAD"); msg != "" {
		p["message"] = msg
	}
	if name := git("log", "-1", "--format=%an", "HEAD"); name != "" {
		p["pusher"] = name
	}
	if remote := git("remote", "get-url", "origin"); remote != "" {
		cloneURL, repo := describeRemote(remote)
		p["clone_url"] = cloneURL
		if repo != "" {
			p["repo"] = repo
		}
	}
	return p
}

// describeRemote returns remote without user info, and its last two path
// segments as owner/name without ".git".
func describeRemote(remote string) (cloneURL, repo string) {
	cloneURL = remote
	path := remote
	if u, err := url.Parse(remote); err == nil && u.Scheme != "" && u.Host != "" {
		u.User = nil
		cloneURL = u.String()
		path = u.Path
	} else if i := strings.Index(remote, ":"); i >= 0 {
		// scp-like syntax: git@host:owner/name.git
		path = remote[i+1:]
	}
	parts := strings.Split(strings.Trim(strings.TrimSuffix(path, ".git"), "/"), "/")
	if len(parts) >= 2 {
		repo = parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	return cloneURL, repo
}

// sourceValue converts a payload to the frozen Starlark value that
// ctx.input returns: a struct whose attributes are the payload's
// identifier-like keys, with every field of fields present (None when
// unset). Nested objects become dicts.
func sourceValue(name string, p Payload, fields []string) (starlark.Value, error) {
	attrs := starlark.StringDict{}
	for _, f := range fields {
		attrs[f] = starlark.None
	}
	for k, v := range p {
		if !isIdentifier(k) {
			continue
		}
		sv, err := fromJSON(v)
		if err != nil {
			return nil, fmt.Errorf("convert source %s field %q: %w", name, k, err)
		}
		attrs[k] = sv
	}
	s := starlarkstruct.FromStringDict(starlark.String(name), attrs)
	s.Freeze()
	return s, nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
