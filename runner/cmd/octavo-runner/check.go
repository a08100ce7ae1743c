package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/octavo-ci/octavo/runner/pipeline"
)

// checkCommand validates a pipeline and prints its job graph. It returns 0
// when the pipeline is valid and 1 with the problems on stderr when not.
func checkCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("octavo-runner check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("pipeline", ".octavo/ci.star", "pipeline `FILE` to validate")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "octavo-runner check: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}

	p, err := pipeline.LoadFile(*path, *path, pipeline.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitFailure
	}

	width := 0
	for _, j := range p.Jobs {
		width = max(width, len(j.ID))
	}
	fmt.Fprintf(stdout, "%s: %d jobs, valid\n", p.File, len(p.Jobs))
	for _, j := range p.Jobs {
		line := fmt.Sprintf("  %-*s  <- %s", width, j.ID, strings.Join(j.Inputs, ", "))
		if j.AllowFailure {
			line += "  (allow_failure)"
		}
		if j.Timeout > 0 {
			line += fmt.Sprintf("  (timeout %s)", j.Timeout)
		}
		fmt.Fprintln(stdout, line)
	}
	return 0
}
