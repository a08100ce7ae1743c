package workspace

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// presence is the result of one lookup in a mirror: whether the commit
// exists, and whether the path is a file inside it.
type presence struct {
	commit bool
	file   bool
}

// lookup checks with one git cat-file --batch-check process whether the
// mirror at dir contains the commit sha and, when path is not empty, whether
// that commit contains path. An error means git failed, not that an
// object is missing.
func (m *Manager) lookup(ctx context.Context, dir, sha, path string) (presence, error) {
	queries := sha + "^{commit}\n"
	if path != "" {
		queries += sha + ":" + path + "\n"
	}
	// With this format a found object prints its bare type, and a missing
	// or ambiguous one prints the query followed by " missing" or
	// " ambiguous", which always contains a space.
	out, err := m.runInput(ctx, strings.NewReader(queries), "", "--git-dir", dir, "cat-file", "--batch-check=%(objecttype)")
	if err != nil {
		return presence{}, err
	}
	lines := strings.Split(string(bytes.TrimSuffix(out, []byte("\n"))), "\n")
	if want := strings.Count(queries, "\n"); len(lines) != want {
		return presence{}, fmt.Errorf("git cat-file printed %d lines, want %d: %q", len(lines), want, out)
	}

	found := presence{commit: lines[0] == "commit"}
	if path != "" {
		// A folder at path is a tree, and a missing path prints the query
		// with " missing", so only a blob is a file.
		found.file = found.commit && lines[1] == "blob"
	}
	return found, nil
}

// checkPath rejects a path that would break the line-based input of git
// cat-file --batch-check.
func checkPath(path string) error {
	if path == "" || strings.ContainsAny(path, "\n\r") {
		return fmt.Errorf("invalid path %q; want a non-empty path inside the repository without line breaks", path)
	}
	return nil
}

// HasFile reports whether the commit sha of the fetched mirror contains
// path. It returns an error when the commit itself is missing.
func (m *Manager) HasFile(ctx context.Context, fullName, sha, path string) (bool, error) {
	if err := checkCommitArgs(fullName, sha, path); err != nil {
		return false, fmt.Errorf("look up %s: %w", path, err)
	}
	found, err := m.lookup(ctx, m.MirrorDir(fullName), sha, path)
	if err != nil {
		return false, fmt.Errorf("look up %s in %s: %w", path, fullName, err)
	}
	if !found.commit {
		return false, fmt.Errorf("look up %s in %s: commit %s not in the mirror", path, fullName, sha)
	}
	return found.file, nil
}

// Lookup does [Manager.Fetch] and [Manager.HasFile] with as few git
// processes as it can: one when the mirror already contains sha. It returns
// an error when the commit is still missing after the fetch.
func (m *Manager) Lookup(ctx context.Context, fullName, cloneURL, sha, path string) (bool, error) {
	if err := checkCommitArgs(fullName, sha, path); err != nil {
		return false, fmt.Errorf("look up %s: %w", path, err)
	}
	found, current, err := m.fetch(ctx, fullName, cloneURL, sha, path, nil)
	if err != nil {
		return false, err
	}
	if !current {
		return m.HasFile(ctx, fullName, sha, path)
	}
	return found.file, nil
}

// checkCommitArgs is [checkArgs] for calls that need a commit and a path.
func checkCommitArgs(fullName, sha, path string) error {
	if sha == "" {
		return fmt.Errorf("missing commit id for %s; want 40 or 64 lowercase hex digits", fullName)
	}
	if err := checkArgs(fullName, "", sha); err != nil {
		return err
	}
	return checkPath(path)
}
