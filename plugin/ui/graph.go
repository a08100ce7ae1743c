package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"strings"

	"github.com/octavo-ci/octavo/plugin/store"
)

// jobInputs decodes a job's JSON list of input names; a damaged value
// yields no inputs rather than a broken page.
func jobInputs(job store.Job) []string {
	var inputs []string
	_ = json.Unmarshal([]byte(job.Inputs), &inputs)
	return inputs
}

// jobStateClass maps a job state to the CSS class of its label.
func jobStateClass(state string) string {
	switch state {
	case "succeeded":
		return statePassing
	case "failed":
		return stateFailing
	case "running":
		return stateRunning
	default:
		return stateUnknown
	}
}

// graphSVG draws the job graph left to right: a job's column is one more
// than the deepest job it depends on, and sources (octavo/...) are not
// drawn. Each box links to the job's section on the page.
func graphSVG(jobs []store.Job) template.HTML {
	if len(jobs) == 0 {
		return ""
	}
	index := make(map[string]int, len(jobs))
	for i, j := range jobs {
		index[j.Name] = i
	}

	// Depths by repeated relaxation; the runner rejects cycles, and the
	// bound on rounds keeps a damaged graph from looping.
	depth := make([]int, len(jobs))
	for round := 0; round < len(jobs); round++ {
		changed := false
		for i, j := range jobs {
			for _, in := range jobInputs(j) {
				if k, ok := index[in]; ok && depth[k]+1 > depth[i] {
					depth[i] = depth[k] + 1
					changed = true
				}
			}
		}
		if !changed {
			break
		}
	}

	const (
		boxW, boxH = 150.0, 28.0
		colW, rowH = 190.0, 40.0
		pad        = 6.0
	)
	row := make([]int, len(jobs))
	rowsInColumn := map[int]int{}
	maxDepth, maxRows := 0, 0
	for i := range jobs {
		row[i] = rowsInColumn[depth[i]]
		rowsInColumn[depth[i]]++
		maxDepth = max(maxDepth, depth[i])
		maxRows = max(maxRows, rowsInColumn[depth[i]])
	}
	pos := func(i int) (x, y float64) {
		return pad + float64(depth[i])*colW, pad + float64(row[i])*rowH
	}

	width := pad*2 + float64(maxDepth)*colW + boxW
	height := pad*2 + float64(maxRows-1)*rowH + boxH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="job-graph" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="job graph">`,
		width, height, width, height)
	for i, j := range jobs {
		for _, in := range jobInputs(j) {
			k, ok := index[in]
			if !ok {
				continue
			}
			x1, y1 := pos(k)
			x2, y2 := pos(i)
			x1 += boxW
			y1 += boxH / 2
			y2 += boxH / 2
			mid := (x1 + x2) / 2
			fmt.Fprintf(&b, `<path d="M%.1f %.1fC%.1f %.1f %.1f %.1f %.1f %.1f" fill="none" stroke="#8c959f" stroke-width="1.5"/>`,
				x1, y1, mid, y1, mid, y2, x2, y2)
		}
	}
	for i, j := range jobs {
		x, y := pos(i)
		name := j.Name
		if r := []rune(name); len(r) > 20 {
			name = string(r[:19]) + "…"
		}
		fmt.Fprintf(&b, `<a href="#job-%s"><rect x="%.1f" y="%.1f" width="%.0f" height="%.0f" rx="5" fill="%s"/><text x="%.1f" y="%.1f" font-size="12" fill="#fff" font-family="ui-monospace,monospace">%s</text><title>%s: %s</title></a>`,
			template.HTMLEscapeString(j.Name), x, y, boxW, boxH, stateColor(jobStateClass(j.State)),
			x+8, y+18, template.HTMLEscapeString(name),
			template.HTMLEscapeString(j.Name), template.HTMLEscapeString(j.State))
	}
	b.WriteString(`</svg>`)
	// Only numbers, fixed colours and escaped names were written above.
	return template.HTML(b.String())
}
