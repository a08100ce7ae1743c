// Package pipeline loads and validates a Starlark pipeline file
// (.octavo/ci.star).
//
// Loading executes the file's top level with go.starlark.net under an
// execution step limit. The file declares jobs with the predeclared
// builtin
//
//	job(id, inputs, run, allow_failure=False, timeout=None)
//
// and may use struct() and the json module. load() is not supported.
// Validation is fail-closed: a pipeline with any invalid job does not run
// at all. Every problem is reported as a [*Error] whose text is
// "file:line: message" and names the offending job.
package pipeline

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/octavo-ci/octavo/schema"
)

// SourcePrefix starts the name of every source. Job ids may not use it.
const SourcePrefix = "octavo/"

// SourcePush is the push source: the payload of the push that started the
// run.
const SourcePush = "octavo/push"

// NOTE: octavo/pull_request is reserved for pull request runs but not yet
// produced, so a pipeline naming it fails validation as an unknown source.
var knownSources = []string{SourcePush}

// KnownSources returns the names of the sources a pipeline may use as inputs.
func KnownSources() []string {
	return append([]string(nil), knownSources...)
}

// idPattern is the form of a job id and of the part after "octavo/" in a
// source name.
var idPattern = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Job is one job declared with job(). Jobs are immutable after [Load].
type Job struct {
	// ID is the job id as declared.
	ID string
	// Inputs names other jobs and sources, in declaration order.
	Inputs []string
	// Run is the run function, called with the job's ctx object. It is
	// frozen and may be called from any goroutine, one call at a time per
	// Starlark thread.
	Run starlark.Callable
	// AllowFailure lets the job fail without failing the run.
	AllowFailure bool
	// Timeout ends the job after this long; 0 means no limit.
	Timeout time.Duration
	// Pos is the position of the job() call.
	Pos syntax.Position
}

// Pipeline is a loaded and validated pipeline.
type Pipeline struct {
	// File is the file name used in positions and messages.
	File string
	// Jobs lists the jobs in declaration order.
	Jobs []*Job
	// Prints holds the output of print() calls made while loading, in order.
	Prints []string

	byID map[string]*Job
}

// Job returns the job with the given id, or nil.
func (p *Pipeline) Job(id string) *Job {
	return p.byID[id]
}

// Graph returns the job graph as announced in the run_started event.
func (p *Pipeline) Graph() []schema.JobNode {
	nodes := make([]schema.JobNode, 0, len(p.Jobs))
	for _, j := range p.Jobs {
		nodes = append(nodes, schema.JobNode{
			ID:           j.ID,
			Inputs:       append([]string(nil), j.Inputs...),
			AllowFailure: j.AllowFailure,
		})
	}
	return nodes
}

// Ancestors returns every job and source that id depends on, directly or
// through other jobs. It returns an empty set for an unknown id.
func (p *Pipeline) Ancestors(id string) map[string]bool {
	seen := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		j := p.byID[name]
		if j == nil {
			return
		}
		for _, in := range j.Inputs {
			if seen[in] {
				continue
			}
			seen[in] = true
			visit(in)
		}
	}
	visit(id)
	return seen
}

// IsSource reports whether name is in the reserved source namespace.
func IsSource(name string) bool {
	return strings.HasPrefix(name, SourcePrefix)
}

// Error is one load or validation problem at a position in the pipeline
// file.
type Error struct {
	Pos syntax.Position
	// Job is the id of the job the problem concerns, or "" for problems of
	// the whole file such as a syntax error.
	Job string
	Msg string
}

// Error returns "file:line: message".
func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.Pos.Filename(), e.Pos.Line, e.Msg)
}
