// Package schematest compiles the embedded JSON Schema files of package
// schema with a real JSON Schema 2020-12 validator, so tests on both sides
// of the event stream check events against the committed schema text.
package schematest

import (
	"bytes"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/octavo-ci/octavo/schema"
)

// Compile compiles the embedded schema file name, such as
// "events.schema.json". It returns an error when the file is missing or is
// not a valid 2020-12 schema.
func Compile(name string) (*jsonschema.Schema, error) {
	text, err := schema.Files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read embedded schema %s: %w", name, err)
	}

	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse schema %s: %w", name, err)
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(name, doc); err != nil {
		return nil, fmt.Errorf("add schema %s: %w", name, err)
	}
	sch, err := c.Compile(name)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", name, err)
	}
	return sch, nil
}

// ValidateJSON checks one JSON document, such as one line of the event
// stream, against sch. It returns a parse error for text that is not JSON
// and a *jsonschema.ValidationError naming every violated keyword otherwise.
func ValidateJSON(sch *jsonschema.Schema, text []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
	if err != nil {
		return fmt.Errorf("parse instance: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("validate instance: %w", err)
	}
	return nil
}
