package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const fn = "def f(ctx):\n    pass\n\n"

func TestLoadRejectsInvalidPipelines(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "cycle is named in order",
			src: fn + `job("a", inputs = ["c"], run = f)
job("b", inputs = ["a"], run = f)
job("c", inputs = ["b"], run = f)
`,
			want: []string{`ci.star:4: job "a": dependency cycle a -> c -> b -> a; each job lists the next one as an input, so none can start`},
		},
		{
			name: "self dependency is a cycle",
			src:  fn + `job("a", inputs = ["a"], run = f)` + "\n",
			want: []string{`ci.star:4: job "a": dependency cycle a -> a;`},
		},
		{
			name: "empty inputs",
			src:  fn + `job("a", inputs = [], run = f)` + "\n",
			want: []string{`ci.star:4: job "a": inputs are empty; list the jobs or sources it needs, such as "octavo/push"`},
		},
		{
			name: "unknown input",
			src:  fn + `job("a", inputs = ["octavo/push", "bulid"], run = f)` + "\n",
			want: []string{`ci.star:4: job "a": unknown input "bulid"; no job has that id`},
		},
		{
			name: "unknown source",
			src:  fn + `job("a", inputs = ["octavo/pull_request"], run = f)` + "\n",
			want: []string{`ci.star:4: job "a": unknown source "octavo/pull_request"; known sources: octavo/push`},
		},
		{
			name: "input listed twice",
			src:  fn + `job("a", inputs = ["octavo/push", "octavo/push"], run = f)` + "\n",
			want: []string{`ci.star:4: job "a": input "octavo/push" is listed twice`},
		},
		{
			name: "unreachable behind a cycle",
			src: fn + `job("a", inputs = ["b"], run = f)
job("b", inputs = ["a"], run = f)
job("c", inputs = ["octavo/push", "b"], run = f)
`,
			want: []string{
				`ci.star:4: job "a": dependency cycle a -> b -> a;`,
				`ci.star:6: job "c": unreachable from any source, because its input "b" can never run`,
			},
		},
		{
			name: "duplicate id",
			src: fn + `job("a", inputs = ["octavo/push"], run = f)
job("a", inputs = ["octavo/push"], run = f)
`,
			want: []string{`ci.star:5: job "a": duplicate id; first declared at ci.star:4`},
		},
		{
			name: "invalid id with capitals and spaces",
			src:  fn + `job("Build It", inputs = ["octavo/push"], run = f)` + "\n",
			want: []string{`ci.star:4: job "Build It": invalid id; use only lowercase letters, digits, "_" and "-"`},
		},
		{
			name: "empty id",
			src:  fn + `job("", inputs = ["octavo/push"], run = f)` + "\n",
			want: []string{`ci.star:4: job "": invalid id;`},
		},
		{
			name: "slash in a job id",
			src:  fn + `job("web/build", inputs = ["octavo/push"], run = f)` + "\n",
			want: []string{`ci.star:4: job "web/build": invalid id; "/" is only allowed in source names under the reserved "octavo/" namespace`},
		},
		{
			name: "job id in the source namespace",
			src:  fn + `job("octavo/push", inputs = ["octavo/push"], run = f)` + "\n",
			want: []string{`ci.star:4: job "octavo/push": invalid id; the "octavo/" namespace is reserved for sources such as "octavo/push"`},
		},
		{
			name: "slash in an input outside the source namespace",
			src:  fn + `job("a", inputs = ["ext/push"], run = f)` + "\n",
			want: []string{`ci.star:4: job "a": input "ext/push" contains "/" outside the reserved "octavo/" namespace`},
		},
		{
			name: "no jobs",
			src:  "x = 1\n",
			want: []string{`ci.star:1: pipeline declares no jobs;`},
		},
		{
			name: "several problems are all reported",
			src: fn + `job("A", inputs = ["octavo/push"], run = f)
job("b", inputs = [], run = f)
`,
			want: []string{`ci.star:4: job "A": invalid id`, `ci.star:5: job "b": inputs are empty`},
		},
		{
			name: "run is not a function",
			src:  `job("a", inputs = ["octavo/push"], run = "make test")` + "\n",
			want: []string{`ci.star:1: job "a": for parameter "run": got string, want callable`},
		},
		{
			name: "inputs is a string",
			src:  fn + `job("a", inputs = "octavo/push", run = f)` + "\n",
			want: []string{`ci.star:4: job "a": inputs is a string, want a list of job ids and sources such as ["octavo/push"]`},
		},
		{
			name: "invalid timeout",
			src:  fn + `job("a", inputs = ["octavo/push"], run = f, timeout = "soon")` + "\n",
			want: []string{`ci.star:4: job "a": invalid timeout "soon": want seconds or a duration such as "90s" or "10m"`},
		},
		{
			name: "negative timeout",
			src:  fn + `job("a", inputs = ["octavo/push"], run = f, timeout = -5)` + "\n",
			want: []string{`ci.star:4: job "a": invalid timeout -5: want a positive duration`},
		},
		{
			name: "load is not supported",
			src:  `load("other.star", "x")` + "\n",
			want: []string{`ci.star:1: cannot load other.star: load() is not supported; keep the pipeline in one file`},
		},
		{
			name: "job called from a run function",
			src: `def f(ctx):
    job("late", inputs = ["octavo/push"], run = f)
job("a", inputs = ["octavo/push"], run = f)
`,
			want: nil, // Valid to load; the late call fails when the job runs.
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("ci.star", []byte(tt.src), Options{})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Load error %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want errors %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("error %d is %q, want it to start with %q", i+1, lines[i], want)
				}
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Errorf("error %T does not unwrap to *pipeline.Error", err)
			}
		})
	}
}

func TestLoadAcceptsValidPipeline(t *testing.T) {
	p, err := Load("ci.star", []byte(fn+`
job("test", inputs = ["octavo/push"], run = f)
job("build", inputs = ("test", "octavo/push"), run = f, allow_failure = True, timeout = 90)
job("deploy", inputs = ["build"], run = f, timeout = "10m")
`), Options{})
	if err != nil {
		t.Fatal(err)
	}

	graph := p.Graph()
	if len(graph) != 3 || graph[1].ID != "build" || !graph[1].AllowFailure || len(graph[1].Inputs) != 2 {
		t.Errorf("graph %+v, want test, build (allow_failure, two inputs), deploy", graph)
	}
	if got := p.Job("build").Timeout.String(); got != "1m30s" {
		t.Errorf("build timeout %s, want 1m30s", got)
	}
	if got := p.Job("deploy").Timeout.String(); got != "10m0s" {
		t.Errorf("deploy timeout %s, want 10m0s", got)
	}
	anc := p.Ancestors("deploy")
	for _, name := range []string{"build", "test", "octavo/push"} {
		if !anc[name] {
			t.Errorf("Ancestors(deploy) = %v lacks %q", anc, name)
		}
	}
}

func TestLoadStepLimit(t *testing.T) {
	_, err := Load("ci.star", []byte("def spin():\n    while True:\n        pass\n\nspin()\n"), Options{MaxSteps: 10_000})
	if err == nil || !strings.Contains(err.Error(), "execution step limit reached (10000 steps)") {
		t.Errorf("Load error %v, want the step limit", err)
	}
}

func TestLoadSampleFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "*.star"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample pipelines: %v", err)
	}
	for _, f := range files {
		if _, err := LoadFile(f, filepath.Base(f), Options{}); err != nil {
			t.Errorf("sample %s: %v", f, err)
		}
	}
}

// FuzzLoad checks that no source text makes Load panic or hang, and that a
// pipeline it accepts satisfies the graph rules.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "*.star"))
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(fn + `job("a", inputs = ["b"], run = f)` + "\n" + `job("b", inputs = ["a"], run = f)`))
	f.Add([]byte("while True:\n    pass\n"))

	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Load("fuzz.star", src, Options{MaxSteps: 100_000})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.star:") {
				t.Errorf("error %q does not start with the file position", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, j := range p.Jobs {
			if msg := checkID(j.ID); msg != "" || seen[j.ID] {
				t.Errorf("accepted invalid or duplicate id %q", j.ID)
			}
			seen[j.ID] = true
			if len(j.Inputs) == 0 {
				t.Errorf("accepted job %q without inputs", j.ID)
			}
			if p.Ancestors(j.ID)[j.ID] {
				t.Errorf("accepted job %q that depends on itself", j.ID)
			}
		}
	})
}
