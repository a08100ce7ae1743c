package webhook

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
)

// namePattern matches an owner or repository name as Gitea and Forgejo
// allow them: ASCII letters, digits, dash, underscore and dot.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// commitPattern matches a full SHA-1 or SHA-256 object id.
var commitPattern = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// checkRepo rejects repository names that could escape the mirror folder
// or confuse a URL: each part must match [namePattern] and must not be "."
// or "..", and the full name must be OWNER/NAME.
func checkRepo(r Repo) error {
	for _, part := range []string{r.Owner, r.Name} {
		if !namePattern.MatchString(part) || part == "." || part == ".." {
			return fmt.Errorf("repository %q has an invalid owner or name %q (use letters, digits, '-', '_' and '.'): %w", r.FullName, part, ErrMalformed)
		}
	}
	if r.FullName != r.Owner+"/"+r.Name {
		return fmt.Errorf("repository full_name %q is not owner/name %q: %w", r.FullName, r.Owner+"/"+r.Name, ErrMalformed)
	}
	return nil
}

// checkRef rejects a ref that git's check-ref-format would reject, such as
// one with "..", a control character, a space or a trailing slash. Other
// Unicode is allowed, as git allows it.
func checkRef(ref string) error {
	bad := func(why string) error {
		return fmt.Errorf("ref %q is not a valid git ref (%s): %w", ref, why, ErrMalformed)
	}
	if strings.Contains(ref, "..") || strings.Contains(ref, "//") || strings.Contains(ref, "@{") {
		return bad(`contains "..", "//" or "@{"`)
	}
	if strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") || strings.HasSuffix(ref, ".lock") {
		return bad(`ends in "/", "." or ".lock"`)
	}
	for _, c := range ref {
		if unicode.IsControl(c) || unicode.IsSpace(c) || strings.ContainsRune(`~^:?*[\`, c) || c == unicode.ReplacementChar {
			return bad("contains a control character, space or one of ~^:?*[\\")
		}
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") {
			return bad(`has a component starting with "."`)
		}
	}
	return nil
}

// checkCommit rejects anything but a full hexadecimal object id, so the
// value can never reach git as an option or a revision expression.
func checkCommit(field, sha string) error {
	if !commitPattern.MatchString(sha) {
		return fmt.Errorf("%s %q is not a full commit id (40 or 64 lowercase hex digits): %w", field, sha, ErrMalformed)
	}
	return nil
}

// checkCloneURL accepts only absolute http and https URLs, because git
// would also read local paths, file:// and ext:: remotes on the sidecar's
// own machine.
func checkCloneURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("repository clone_url %q is not an absolute http or https URL: %w", s, ErrMalformed)
	}
	return nil
}
