// Package mask replaces secret values in text before it leaves the runner.
//
// A [Masker] replaces each secret value with the placeholder "***NAME***".
// It also replaces the value's standard and URL-safe base64 encodings
// (padded and unpadded), its URL query and path escapes, its JSON string
// escape, and each line of a multi-line value. Values shorter than [MinLen] bytes are not masked, because
// masking them would hide ordinary text such as "on" or "1"; [New] returns a
// warning for each.
package mask

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// MinLen is the shortest secret value, in bytes, that is masked.
const MinLen = 4

// Masker replaces secret values with placeholders. The zero value and a nil
// *Masker mask nothing. A Masker is immutable after [New] and safe for
// concurrent use.
type Masker struct {
	replacer *strings.Replacer
	// forms lists every masked text, longest first, for [Masker.SafeCut].
	forms  []string
	maxLen int
	// byFirst lists the forms by their first byte, longest first, so that
	// firstMatch compares only the forms that can start at a byte. Most
	// lines contain no form, and the replacer, which copies every text it
	// is given, then does not run at all.
	byFirst [256][]string
	// starts marks the bytes that start a form. It is a smaller table than
	// byFirst, for the common byte that starts none.
	starts [256]bool
}

// New builds a Masker for secrets, a map from secret name to value. It also
// returns one warning per value, or line of a multi-line value, that is too
// short to mask. The warnings name the secret and never show its value.
func New(secrets map[string]string) (*Masker, []string) {
	type pair struct{ form, name string }
	var pairs []pair
	var warnings []string
	seen := map[string]bool{}
	add := func(form, name string) {
		if len(form) < MinLen || seen[form] {
			return
		}
		seen[form] = true
		pairs = append(pairs, pair{form, name})
	}

	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		value := secrets[name]
		if value == "" {
			continue
		}
		if len(value) < MinLen {
			warnings = append(warnings, fmt.Sprintf("secret %q is shorter than %d bytes and is not masked in the output; use a longer value", name, MinLen))
			continue
		}
		for _, form := range encodedForms(value) {
			add(form, name)
		}

		lines := strings.Split(strings.ReplaceAll(value, "\r\n", "\n"), "\n")
		if len(lines) < 2 {
			continue
		}
		for i, line := range lines {
			line = strings.TrimSuffix(line, "\r")
			if strings.TrimSpace(line) == "" {
				continue
			}
			if len(line) < MinLen {
				warnings = append(warnings, fmt.Sprintf("line %d of secret %q is shorter than %d bytes and is not masked when it appears alone", i+1, name, MinLen))
				continue
			}
			for _, form := range encodedForms(line) {
				add(form, name)
			}
		}
	}

	if len(pairs) == 0 {
		return &Masker{}, warnings
	}

	// NOTE: strings.Replacer tries the old strings in argument order at each
	// position, so longer forms go first: a padded base64 form wins over its
	// unpadded prefix, and a whole value over one of its lines.
	slices.SortStableFunc(pairs, func(a, b pair) int { return cmp.Compare(len(b.form), len(a.form)) })
	args := make([]string, 0, 2*len(pairs))
	forms := make([]string, 0, len(pairs))
	for _, p := range pairs {
		args = append(args, p.form, Placeholder(p.name))
		forms = append(forms, p.form)
	}
	m := &Masker{replacer: strings.NewReplacer(args...), forms: forms, maxLen: len(forms[0])}
	for _, form := range forms {
		m.byFirst[form[0]] = append(m.byFirst[form[0]], form)
		m.starts[form[0]] = true
	}
	return m, warnings
}

// Placeholder returns the text that replaces the secret called name.
func Placeholder(name string) string {
	return "***" + name + "***"
}

// Mask returns s with every secret form replaced by its placeholder.
func (m *Masker) Mask(s string) string {
	if m == nil || m.replacer == nil {
		return s
	}
	i := firstMatch(m, s)
	if i < 0 {
		return s
	}
	return s[:i] + m.replacer.Replace(s[i:])
}

// MaskBytes is [Masker.Mask] for a byte slice. It returns b itself, not a
// copy, when b holds no secret form, and a new slice otherwise.
func (m *Masker) MaskBytes(b []byte) []byte {
	if m == nil || m.replacer == nil {
		return b
	}
	i := firstMatch(m, b)
	if i < 0 {
		return b
	}
	return append(b[:i:i], m.replacer.Replace(string(b[i:]))...)
}

// firstMatch returns the position of the first masked form in s, or -1.
// The replacer then starts there, so the text before the first secret is
// scanned once.
func firstMatch[T string | []byte](m *Masker, s T) int {
	for i := 0; i < len(s); i++ {
		if !m.starts[s[i]] {
			continue
		}
		for _, form := range m.byFirst[s[i]] {
			if len(s)-i >= len(form) && string(s[i:i+len(form)]) == form {
				return i
			}
		}
	}
	return -1
}

// MaxLen returns the length in bytes of the longest masked form, or 0 when
// nothing is masked. A reader that splits a stream into pieces must keep
// this many bytes of look-ahead to call [Masker.SafeCut].
func (m *Masker) MaxLen() int {
	if m == nil {
		return 0
	}
	return m.maxLen
}

// SafeCut returns the position at or before cut where buf may be split so
// that no masked form spans the split, which would leave both halves
// unmasked. buf must extend at least [Masker.MaxLen]-1 bytes past cut, or
// to the end of the text. It returns cut itself when no form spans it or
// when the only safe position would be 0.
func (m *Masker) SafeCut(buf []byte, cut int) int {
	if m == nil || m.maxLen == 0 {
		return cut
	}

	// Moving the cut back can make it land inside an earlier, overlapping
	// form, so passes repeat until one moves nothing. Each move goes
	// strictly backwards, which bounds the passes by the number of matches.
	best := cut
	for moved := true; moved && best > 0; {
		moved = false
		for _, form := range m.forms {
			if start, ok := spanning(buf, best, form); ok {
				best, moved = start, true
			}
		}
	}
	if best == 0 {
		return cut
	}
	return best
}

// spanning returns the start of the first occurrence of form in buf that
// begins before cut and ends after it.
func spanning(buf []byte, cut int, form string) (int, bool) {
	lo := max(0, cut-len(form)+1)
	hi := min(len(buf), cut+len(form)-1)
	for off := lo; off < hi; {
		i := strings.Index(string(buf[off:hi]), form)
		if i < 0 {
			return 0, false
		}
		start := off + i
		if start < cut && start+len(form) > cut {
			return start, true
		}
		off = start + 1
	}
	return 0, false
}

// encodedForms returns v and every encoding of it that a step might print.
func encodedForms(v string) []string {
	forms := []string{
		v,
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawURLEncoding.EncodeToString([]byte(v)),
		url.QueryEscape(v),
		url.PathEscape(v),
	}
	// json.Marshal escapes <, > and & for HTML, and an encoder with
	// SetEscapeHTML(false) does not, so both escapes are masked.
	if quoted, err := json.Marshal(v); err == nil {
		forms = append(forms, string(quoted[1:len(quoted)-1]))
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err == nil {
		quoted := strings.TrimSuffix(b.String(), "\n")
		forms = append(forms, quoted[1:len(quoted)-1])
	}
	return forms
}
