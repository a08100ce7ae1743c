package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// signatureHeaders lists the headers that carry the hex HMAC-SHA256 of the
// body, in the order they are consulted. Gitea and Forgejo send the same
// digest under every name; X-Hub-Signature-256 prefixes it with "sha256=".
var signatureHeaders = []string{
	"X-Forgejo-Signature",
	"X-Gitea-Signature",
	"X-Gogs-Signature",
	"X-Hub-Signature-256",
}

// Sign returns the hex HMAC-SHA256 of body under secret, as the forge puts it
// in X-Gitea-Signature.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify checks the delivery's signature against the HMAC-SHA256 of signed,
// which is the raw JSON body (for a form delivery, the decoded payload
// field). The first non-empty header of [signatureHeaders] is checked and
// compared in constant time. It returns [ErrMissingSignature] when every
// header is absent or empty and [ErrBadSignature] when the digest differs.
func Verify(h http.Header, secret, signed []byte) error {
	for _, name := range signatureHeaders {
		got := strings.TrimSpace(h.Get(name))
		if name == "X-Hub-Signature-256" {
			got = strings.TrimPrefix(got, "sha256=")
		}
		if got == "" {
			continue
		}

		sum, err := hex.DecodeString(got)
		if err != nil {
			return fmt.Errorf("%s is not hex: %w", name, ErrBadSignature)
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(signed)
		if !hmac.Equal(sum, mac.Sum(nil)) {
			return fmt.Errorf("check %s: %w", name, ErrBadSignature)
		}
		return nil
	}
	return ErrMissingSignature
}
