package step

import (
	"bytes"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func pipeSizeOf(t *testing.T, f *os.File) int {
	t.Helper()
	size, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	return size
}

// TestGrowingReaderEnlargesBusyPipesOnly checks that a pipe is enlarged
// once growAfter bytes went through it, and that a quiet step's pipe keeps
// its default size, because enlarging every step's pipes made short steps
// measurably slower.
func TestGrowingReaderEnlargesBusyPipesOnly(t *testing.T) {
	tests := []struct {
		name    string
		written int
		grown   bool
	}{
		{"quiet step keeps the default size", 100, false},
		{"busy step gets a large pipe", growAfter, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			before := pipeSizeOf(t, r)

			go func() {
				_, _ = w.Write(bytes.Repeat([]byte("x"), tt.written))
				w.Close()
			}()
			g := &growingReader{f: r}
			n, err := io.Copy(io.Discard, g)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(tt.written) {
				t.Fatalf("read %d bytes, want %d", n, tt.written)
			}

			after := pipeSizeOf(t, r)
			if got := after > before; got != tt.grown {
				t.Errorf("pipe size went from %d to %d, want grown = %v", before, after, tt.grown)
			}
		})
	}
}
