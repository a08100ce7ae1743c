package ui

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/uitest"
)

// Load of the fan-out benchmark: a run printing 10,000 lines/s for two
// seconds, stored and published in batches of 100 every 10 ms, the way
// ingestion commits them.
const (
	fanoutRate    = 10_000
	fanoutLines   = 20_000
	fanoutBatch   = 100
	fanoutViewers = 1000
)

// BenchmarkLiveFanout measures how much 1,000 websocket viewers slow down a
// run that prints 10,000 lines/s: the run's duration (storing and
// publishing every line at that pace) with the viewers, divided by its
// duration without any. It also reports how many viewers received every
// line and the process's peak RSS.
func BenchmarkLiveFanout(b *testing.B) {
	for b.Loop() {
		e := newTestEnv(b, "/", false)
		repo := uitest.AddRepo(b, e.store, "alice/app", false)

		quiet := uitest.AddRun(b, e.store, repo, "main", store.RunActive, "", 0)
		alone := ingestAtRate(b, e, quiet.ID)

		watched := uitest.AddRun(b, e.store, repo, "main", store.RunActive, "", 0)
		var (
			wg       sync.WaitGroup
			complete atomic.Int64
			dropped  atomic.Int64
		)
		for range fanoutViewers {
			v := dialRawViewer(b, e, watched.ID)
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, code := v.count()
				if code == websocket.CloseNormalClosure && got == fanoutLines {
					complete.Add(1)
				} else {
					dropped.Add(1)
				}
			}()
		}
		waitViewers(b, e, watched.ID, fanoutViewers)

		watchedDuration := ingestAtRate(b, e, watched.ID)
		e.hub.RunChanged(uitest.SetRunState(b, e.store, watched, store.RunComplete))
		wg.Wait()

		b.ReportMetric(alone.Seconds(), "s-run-alone")
		b.ReportMetric(watchedDuration.Seconds(), "s-run-watched")
		b.ReportMetric(watchedDuration.Seconds()/alone.Seconds(), "duration-ratio")
		b.ReportMetric(float64(complete.Load()), "viewers-complete")
		b.ReportMetric(float64(dropped.Load()), "viewers-dropped")
		b.ReportMetric(peakRSSMiB(b), "peak-rss-MiB")
	}
}

// rawViewer is a websocket client that only counts messages, in place of a
// browser on another machine. The gorilla/websocket client would spend more
// CPU per message than the server under test, so the benchmark would measure
// the client.
type rawViewer struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialRawViewer performs the websocket handshake for the live log of runID
// by hand, so the reader that parsed the response also reads the frames.
func dialRawViewer(b *testing.B, e *testEnv, runID uint) *rawViewer {
	b.Helper()
	host := strings.TrimPrefix(e.srv.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		b.Fatalf("dial %s: %v", host, err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	req := "GET /api/v1/runs/" + uitoa(runID) + "/live?after=0 HTTP/1.1\r\n" +
		"Host: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		b.Fatalf("send handshake: %v", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatalf("read handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("handshake status = %d, want 101", resp.StatusCode)
	}
	return &rawViewer{conn: conn, br: br}
}

// count reads frames until the connection ends and returns the number of
// text messages and the close code (0 when the connection broke).
func (v *rawViewer) count() (int, int) {
	n := 0
	var head [8]byte
	for {
		if _, err := io.ReadFull(v.br, head[:2]); err != nil {
			return n, 0
		}
		opcode := head[0] & 0x0f
		size := uint64(head[1] & 0x7f)
		switch size {
		case 126:
			if _, err := io.ReadFull(v.br, head[:2]); err != nil {
				return n, 0
			}
			size = uint64(binary.BigEndian.Uint16(head[:2]))
		case 127:
			if _, err := io.ReadFull(v.br, head[:8]); err != nil {
				return n, 0
			}
			size = binary.BigEndian.Uint64(head[:8])
		}
		if opcode == 0x8 {
			payload := make([]byte, size)
			if _, err := io.ReadFull(v.br, payload); err != nil || size < 2 {
				return n, 0
			}
			return n, int(binary.BigEndian.Uint16(payload))
		}
		if _, err := v.br.Discard(int(size)); err != nil {
			return n, 0
		}
		if opcode == 0x1 {
			n++
		}
	}
}

// ingestAtRate stores and publishes fanoutLines lines of runID at
// fanoutRate lines/s and returns how long that took. A run that keeps pace
// takes fanoutLines/fanoutRate seconds.
func ingestAtRate(b *testing.B, e *testEnv, runID uint) time.Duration {
	b.Helper()
	line := "\x1b[32mok\x1b[0m  github.com/octavo-ci/octavo/plugin/example  0.123s  coverage: 81.4% of statements"
	interval := time.Second * fanoutBatch / fanoutRate
	start := time.Now()
	for k := 0; k < fanoutLines/fanoutBatch; k++ {
		if wait := time.Until(start.Add(time.Duration(k) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		events := make([]store.RunEvent, fanoutBatch)
		for i := range events {
			events[i] = uitest.Line("test", line)
		}
		e.hub.Publish(runID, uitest.AddEvents(b, e.store, runID, events...))
	}
	return time.Since(start)
}

// peakRSSMiB reads the process's peak resident set size (VmHWM) on Linux,
// or returns 0 elsewhere.
func peakRSSMiB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatalf("parse VmHWM %q: %v", rest, err)
			}
			return kb / 1024
		}
	}
	return 0
}

// latencySamples is how many lines the browser latency benchmark times.
const latencySamples = 300

// BenchmarkLineToBrowser measures the time from publishing a line to the
// line appearing in the DOM of a run page open in headless Chromium, over
// loopback. The page stamps each line with performance.timeOrigin +
// performance.now() as it is added, which shares the wall clock with the
// benchmark, so polling does not add to the measured time.
func BenchmarkLineToBrowser(b *testing.B) {
	ctx := newBrowser(b)
	e := newTestEnv(b, "/", false)
	repo := uitest.AddRepo(b, e.store, "alice/app", false)
	run := uitest.AddRun(b, e.store, repo, "main", store.RunActive, "", 0)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"runs/"+uitoa(run.ID))); err != nil {
		b.Fatalf("open run page: %v", err)
	}
	waitJS(b, ctx, `document.getElementById('live-status').textContent === 'Live'`)
	evalJS[bool](b, ctx, `window.__seen = {};
new MutationObserver(records => {
  const at = performance.timeOrigin + performance.now();
  for (const r of records) for (const n of r.addedNodes) if (n.dataset && n.dataset.seq) window.__seen[n.dataset.seq] = at;
}).observe(document.getElementById('log'), {childList: true, subtree: true});
true`)

	for b.Loop() {
		latencies := make([]float64, 0, latencySamples)
		for range latencySamples {
			stored := uitest.AddEvents(b, e.store, run.ID, uitest.Line("test", "line"))
			seq := strconv.FormatInt(stored[0].Seq, 10)
			sent := float64(time.Now().UnixNano()) / 1e6
			e.hub.Publish(run.ID, stored)

			var seen float64
			deadline := time.Now().Add(10 * time.Second)
			for seen == 0 {
				if time.Now().After(deadline) {
					b.Fatalf("line %s not shown after 10s", seq)
				}
				raw := evalJS[json.RawMessage](b, ctx, `window.__seen["`+seq+`"] || 0`)
				if err := json.Unmarshal(raw, &seen); err != nil {
					b.Fatalf("decode %s: %v", raw, err)
				}
				if seen == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			latencies = append(latencies, seen-sent)
		}
		sort.Float64s(latencies)
		b.ReportMetric(percentile(latencies, 0.50), "p50-ms")
		b.ReportMetric(percentile(latencies, 0.99), "p99-ms")
		b.ReportMetric(latencies[len(latencies)-1], "max-ms")
	}
}

// percentile returns the p-quantile of sorted values by the nearest-rank
// method.
func percentile(sorted []float64, p float64) float64 {
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// hugeLogLines is the length of the log in the huge-log benchmarks.
const hugeLogLines = 1_000_000

// addHugeLog stores hugeLogLines output lines for runID the way ingestion
// does, in chunks of consecutive lines.
func addHugeLog(b *testing.B, e *testEnv, runID uint) {
	b.Helper()
	events := make([]store.RunEvent, hugeLogLines)
	for i := range events {
		x := strconv.Itoa(i + 1)
		events[i] = store.RunEvent{
			RunID: runID, Seq: int64(i + 1), Type: "sh_output", JobName: "test",
			Data: `{"type":"sh_output","job_id":"test","seq":1,"stream":"stdout","line":"line ` + x + `"}`,
		}
	}
	if err := store.AppendEvents(e.store.DB, runID, events); err != nil {
		b.Fatalf("insert %d events: %v", hugeLogLines, err)
	}
}

// BenchmarkRunPageHugeLog measures serving the run page of a run with a
// 1,000,000-line log (which renders only the tail) and one page of earlier
// lines from the middle of the log through the events API.
func BenchmarkRunPageHugeLog(b *testing.B) {
	e := newTestEnv(b, "/", false)
	repo := uitest.AddRepo(b, e.store, "alice/app", false)
	run := uitest.AddRun(b, e.store, repo, "main", store.RunComplete, "", time.Minute)
	addHugeLog(b, e, run.ID)

	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			resp, body := e.get(b, "/runs/"+uitoa(run.ID))
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-seq="1000000"`) {
				b.Fatalf("status %d, or the page lacks the last line", resp.StatusCode)
			}
		}
	})
	b.Run("earlier-page", func(b *testing.B) {
		for b.Loop() {
			resp, body := e.get(b, "/api/v1/runs/"+uitoa(run.ID)+"/events?job=test&before=500000&limit=500")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"seq":499999`) {
				b.Fatalf("status %d, or the page lacks seq 499999", resp.StatusCode)
			}
		}
	})
}

// BenchmarkBrowserHugeLog measures how long headless Chromium takes to load
// and lay out the run page of a 1,000,000-line log, and how long one "load
// earlier lines" click takes until the lines are in the page.
func BenchmarkBrowserHugeLog(b *testing.B) {
	ctx := newBrowser(b)
	e := newTestEnv(b, "/", false)
	repo := uitest.AddRepo(b, e.store, "alice/app", false)
	run := uitest.AddRun(b, e.store, repo, "main", store.RunComplete, "", time.Minute)
	if err := e.store.DB.Create(&store.Job{RunID: run.ID, Name: "test", Inputs: `["octavo/push"]`, State: "succeeded"}).Error; err != nil {
		b.Fatal(err)
	}
	addHugeLog(b, e, run.ID)

	for b.Loop() {
		start := time.Now()
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"runs/"+uitoa(run.ID))); err != nil {
			b.Fatalf("open run page: %v", err)
		}
		waitJS(b, ctx, `document.querySelector('.line[data-seq="1000000"]') !== null`)
		loaded := time.Since(start)

		start = time.Now()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`section.job[data-job="test"] button.earlier`))); err != nil {
			b.Fatalf("click load earlier: %v", err)
		}
		waitJS(b, ctx, `document.querySelector('.line[data-seq="998501"]') !== null`)
		earlier := time.Since(start)

		b.ReportMetric(float64(loaded.Milliseconds()), "load-ms")
		b.ReportMetric(float64(earlier.Milliseconds()), "earlier-ms")
		b.ReportMetric(float64(evalJS[int](b, ctx, `document.querySelectorAll('.line').length`)), "lines-in-dom")
	}
}
