package pipeline

import (
	"fmt"
	"slices"
	"strings"

	"go.starlark.net/syntax"
)

// validate checks the declared jobs and returns every problem found, in
// declaration order. Later checks skip what earlier ones reported, so one
// mistake yields one message.
func validate(p *Pipeline) []error {
	if len(p.Jobs) == 0 {
		return []error{&Error{
			Pos: syntax.MakePosition(&p.File, 1, 1),
			Msg: `pipeline declares no jobs; declare one with job(id, inputs = ["octavo/push"], run = fn)`,
		}}
	}

	var errs []error
	fail := func(j *Job, format string, args ...any) {
		errs = append(errs, &Error{Pos: j.Pos, Job: j.ID, Msg: fmt.Sprintf("job %q: ", j.ID) + fmt.Sprintf(format, args...)})
	}

	for _, j := range p.Jobs {
		if msg := checkID(j.ID); msg != "" {
			fail(j, "%s", msg)
			continue
		}
		if first, dup := p.byID[j.ID]; dup {
			fail(j, "duplicate id; first declared at %s:%d", first.Pos.Filename(), first.Pos.Line)
			continue
		}
		p.byID[j.ID] = j
	}

	for _, j := range p.Jobs {
		if p.byID[j.ID] != j {
			continue
		}
		if len(j.Inputs) == 0 {
			fail(j, "inputs are empty; list the jobs or sources it needs, such as %q", SourcePush)
			continue
		}
		seen := map[string]bool{}
		for _, in := range j.Inputs {
			if seen[in] {
				fail(j, "input %q is listed twice", in)
				continue
			}
			seen[in] = true
			if msg := checkInput(p, in); msg != "" {
				fail(j, "%s", msg)
			}
		}
	}

	inCycle := map[string]bool{}
	for _, cycle := range findCycles(p) {
		for _, id := range cycle {
			inCycle[id] = true
		}
		fail(p.byID[cycle[0]], "dependency cycle %s; each job lists the next one as an input, so none can start", strings.Join(append(cycle, cycle[0]), " -> "))
	}

	reachable := reachableJobs(p)
	for _, j := range p.Jobs {
		if p.byID[j.ID] != j || reachable[j.ID] || inCycle[j.ID] {
			continue
		}
		for _, in := range j.Inputs {
			if p.byID[in] != nil && !reachable[in] {
				fail(j, "unreachable from any source, because its input %q can never run", in)
				break
			}
		}
	}
	return errs
}

// checkID returns why id is not a valid job id, or "".
func checkID(id string) string {
	switch {
	case IsSource(id):
		return fmt.Sprintf("invalid id; the %q namespace is reserved for sources such as %q", SourcePrefix, SourcePush)
	case strings.Contains(id, "/"):
		return fmt.Sprintf(`invalid id; "/" is only allowed in source names under the reserved %q namespace`, SourcePrefix)
	case !idPattern.MatchString(id):
		return `invalid id; use only lowercase letters, digits, "_" and "-"`
	}
	return ""
}

// checkInput returns why in is not a valid input, or "".
func checkInput(p *Pipeline, in string) string {
	switch {
	case IsSource(in):
		if !slices.Contains(knownSources, in) {
			return fmt.Sprintf("unknown source %q; known sources: %s", in, strings.Join(knownSources, ", "))
		}
	case strings.Contains(in, "/"):
		return fmt.Sprintf(`input %q contains "/" outside the reserved %q namespace; name a job id or a source such as %q`, in, SourcePrefix, SourcePush)
	case p.byID[in] == nil:
		return fmt.Sprintf("unknown input %q; no job has that id", in)
	}
	return ""
}

// findCycles returns each dependency cycle once, as the job ids in the
// order of their input edges, starting with the job the depth-first search
// entered first. The search follows jobs in declaration order.
func findCycles(p *Pipeline) [][]string {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var cycles [][]string
	reported := map[string]bool{}

	var visit func(id string)
	visit = func(id string) {
		state[id] = active
		stack = append(stack, id)
		for _, in := range p.byID[id].Inputs {
			if p.byID[in] == nil {
				continue
			}
			switch state[in] {
			case unvisited:
				visit(in)
			case active:
				start := slices.Index(stack, in)
				cycle := slices.Clone(stack[start:])
				key := strings.Join(slices.Sorted(slices.Values(cycle)), ",")
				if !reported[key] {
					reported[key] = true
					cycles = append(cycles, cycle)
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[id] = done
	}

	for _, j := range p.Jobs {
		if p.byID[j.ID] == j && state[j.ID] == unvisited {
			visit(j.ID)
		}
	}
	return cycles
}

// reachableJobs returns the jobs that can run: every input is a source or a
// job that can run. Unknown inputs are ignored because they are reported on
// their own.
func reachableJobs(p *Pipeline) map[string]bool {
	reachable := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, j := range p.Jobs {
			if p.byID[j.ID] != j || reachable[j.ID] {
				continue
			}
			ok := true
			for _, in := range j.Inputs {
				if p.byID[in] != nil && !reachable[in] {
					ok = false
					break
				}
			}
			if ok {
				reachable[j.ID] = true
				changed = true
			}
		}
	}
	return reachable
}
