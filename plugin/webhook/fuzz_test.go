package webhook

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzParse feeds the captured deliveries and mutations of them to Parse,
// which must return either a delivery with a known action or an error
// wrapping ErrMalformed, and never panic.
func FuzzParse(f *testing.F) {
	for _, path := range fixturePaths(f) {
		fx := loadFixture(f, path)
		f.Add(fx.Headers["X-Gitea-Event"], fx.Body)
	}
	f.Fuzz(func(t *testing.T, event, body string) {
		h := http.Header{}
		h.Set("X-Gitea-Event", event)
		h.Set("X-Gitea-Delivery", "fuzz")
		d, err := Parse(h, []byte(body))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		switch d.Action {
		case ActionRun:
			if d.Push == nil || d.Push.SHA == "" || d.Ref == "" {
				t.Fatalf("run action without push, sha or ref: %+v", d)
			}
		case ActionCancel:
			if d.Ref == "" {
				t.Fatal("cancel action without ref")
			}
		case ActionIgnore:
		default:
			t.Fatalf("unknown action %q", d.Action)
		}
	})
}
