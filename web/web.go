// Package web holds the status page's embedded assets: the html/template
// files under templates/ and the stylesheet and live-log script under
// static/. Rendering lives in plugin/ui; this package only embeds the files
// and serves the static ones.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
)

// FS contains templates/*.html, templates/*.svg and static/*.
//
//go:embed templates static
var FS embed.FS

// Templates returns the template files, rooted at templates/.
func Templates() fs.FS {
	sub, err := fs.Sub(FS, "templates")
	if err != nil {
		panic(err) // the folder is embedded above, so this cannot fail
	}
	return sub
}

// Version is a short hash of the static files. Pages append it to asset
// URLs as ?v=VERSION, so browsers may cache the files and still fetch new
// ones after an upgrade.
var Version = func() string {
	h := sha256.New()
	_ = fs.WalkDir(FS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := FS.ReadFile(path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// Static serves the files under static/ at the request path relative to the
// handler's mount point, so mount it with http.StripPrefix. A request that
// carries the current ?v= may be cached for a day; any other request must
// revalidate.
func Static() http.Handler {
	sub, err := fs.Sub(FS, "static")
	if err != nil {
		panic(err) // the folder is embedded above, so this cannot fail
	}
	files := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no folder listings
			return
		}
		if r.URL.Query().Get("v") == Version {
			w.Header().Set("Cache-Control", "public, max-age=86400")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}
