package giteatest

import (
	"testing"
)

func TestBuildReturnsCompleteBinary(t *testing.T) {
	bin, err := Build(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bin.complete() {
		t.Errorf("Build returned %+v, which misses the binary or its static root", bin)
	}
}
