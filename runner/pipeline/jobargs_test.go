package pipeline

import (
	"strings"
	"testing"
)

// TestLoadJobArgumentErrorsNameTheJob covers job() calls with an argument
// of the wrong type or a missing argument. Their messages came straight
// from the argument parser, such as `job: for parameter "run": got int,
// want callable`, and did not say which job was wrong.
func TestLoadJobArgumentErrorsNameTheJob(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"run is not callable", `job("a", inputs = ["octavo/push"], run = 1)`,
			`ci.star:4: job "a": for parameter "run": got int, want callable`},
		{"allow_failure is not a bool", `job("b", inputs = ["octavo/push"], run = f, allow_failure = "no")`,
			`ci.star:4: job "b": for parameter "allow_failure": got string, want bool`},
		{"run is missing", `job("c", inputs = ["octavo/push"])`,
			`ci.star:4: job "c": missing argument for run`},
		{"the id is given by keyword", `job(run = 1, id = "d", inputs = ["octavo/push"])`,
			`ci.star:4: job "d": for parameter "run": got int, want callable`},
		{"the id is not a string", `job(1, ["octavo/push"], f)`,
			`ci.star:4: job: for parameter id: got int, want string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("ci.star", []byte(fn+tt.src+"\n"), Options{})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("error %q, want it to start with %q", got, tt.want)
			}
		})
	}
}
