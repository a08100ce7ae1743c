package schema

import "embed"

// Files holds every JSON Schema file of this folder (events.schema.json,
// plugin.schema.json and any added later) under its base name, so tests and
// tools validate against the same text that is committed.
//
//go:embed *.schema.json
var Files embed.FS
