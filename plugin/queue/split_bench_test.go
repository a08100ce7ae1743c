package queue

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
)

// BenchmarkSplitRunnerOutput classifies 100,000 output lines as the runner
// writes them, in read blocks, as the reading goroutine of ingestion does.
// It reports throughput and the time per line.
func BenchmarkSplitRunnerOutput(b *testing.B) {
	var stream bytes.Buffer
	const lines = 100_000
	for i := range lines {
		fmt.Fprintf(&stream, `{"at_ms":%d,"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"%d"}`+"\n", 1764850000000+i/10_000, i)
	}
	data := stream.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var sc store.OutputScanner
		segs, n := 0, 0
		for off := 0; off < len(data); {
			end := min(off+readBlock, len(data))
			last := bytes.LastIndexByte(data[off:end], '\n')
			batch := splitLines(data[off:off+last+1], &sc, segs)
			segs, n = len(batch.segs), n+batch.lines
			off += last + 1
		}
		if n != lines {
			b.Fatalf("split %d lines, want %d", n, lines)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
}
