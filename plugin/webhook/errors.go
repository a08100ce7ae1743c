package webhook

import "errors"

// ErrMissingSignature is returned when a delivery carries no signature
// header, or only empty ones (the forge sends empty headers for a hook
// without a secret).
var ErrMissingSignature = errors.New("missing webhook signature")

// ErrBadSignature is returned when a delivery's signature does not match the
// HMAC-SHA256 of its body under the configured secret.
var ErrBadSignature = errors.New("webhook signature does not match the body")

// ErrUnsupportedContentType is returned for a body that is neither JSON nor
// the form encoding the forge offers.
var ErrUnsupportedContentType = errors.New("unsupported webhook content type")

// ErrMalformed is returned when the headers or the body of a supported event
// cannot be read: invalid JSON, a missing delivery id, ref or repository.
var ErrMalformed = errors.New("malformed webhook delivery")
