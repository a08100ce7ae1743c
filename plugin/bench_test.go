package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/config"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/webhook"
)

// Environment of the load generator process started by
// BenchmarkWebhookIntake.
const (
	loadURLEnv         = "OCTAVO_BENCH_LOAD_URL"
	loadCountEnv       = "OCTAVO_BENCH_LOAD_COUNT"
	loadConcurrencyEnv = "OCTAVO_BENCH_LOAD_CONCURRENCY"
	loadPrefixEnv      = "OCTAVO_BENCH_LOAD_PREFIX"
)

// loadReport is what the load generator prints as its last line.
type loadReport struct {
	Sent   int     `json:"sent"`
	Failed int     `json:"failed"`
	Secs   float64 `json:"secs"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
}

// TestLoadGenerator is not a test: BenchmarkWebhookIntake runs this test
// binary again with the load environment set, so the load comes from a
// second process over loopback. Without that environment it does nothing.
func TestLoadGenerator(t *testing.T) {
	url := os.Getenv(loadURLEnv)
	if url == "" {
		t.Skip("load generator for BenchmarkWebhookIntake")
	}
	count, _ := strconv.Atoi(os.Getenv(loadCountEnv))
	workers, _ := strconv.Atoi(os.Getenv(loadConcurrencyEnv))
	prefix := os.Getenv(loadPrefixEnv)

	// Bodies are signed before the clock starts, as the forge signs them
	// before sending.
	type delivery struct {
		id, sig string
		body    []byte
	}
	all := make([]delivery, count)
	for i := range all {
		body := fmt.Appendf(nil, `{"ref":"refs/heads/b%d","before":"%040d","after":"%040d","head_commit":{"id":"%040d","message":"m"},"repository":{"name":"app","full_name":"bench/app","owner":{"login":"bench"},"clone_url":"http://127.0.0.1:1/bench/app.git"},"pusher":{"login":"bench"}}`, i%50, i, i+1, i+1)
		all[i] = delivery{id: fmt.Sprintf("%s-%d", prefix, i), sig: webhook.Sign([]byte(hookSecret), body), body: body}
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	lat := make([]time.Duration, count)
	var failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d := all[i]
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Gitea-Event", "push")
				req.Header.Set("X-Gitea-Delivery", d.id)
				req.Header.Set("X-Gitea-Signature", d.sig)
				t0 := time.Now()
				resp, err := client.Do(req)
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					mu.Lock()
					failed++
					mu.Unlock()
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	for i := range all {
		next <- i
	}
	close(next)
	wg.Wait()
	secs := time.Since(start).Seconds()

	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
	out, _ := json.Marshal(loadReport{Sent: count, Failed: failed, Secs: secs, P50Ms: ms(0.5), P99Ms: ms(0.99)})
	fmt.Println("LOAD " + string(out))
}

// BenchmarkWebhookIntake measures signed push deliveries per second
// into a SQLite store, sent by a second process over loopback with 16
// connections, and checks that every delivery was stored exactly once.
// Workers are not started, so only intake is measured. Reported metrics:
// deliveries/s and the p99 time to the 202 response.
func BenchmarkWebhookIntake(b *testing.B) {
	const perRound = 2000
	vars := map[string]string{
		"OCTAVO_WEBHOOK_SECRET": hookSecret,
		"OCTAVO_DATA_DIR":       b.TempDir(),
		"OCTAVO_RUNNER":         runnerPath,
		"OCTAVO_CATCH_UP":       "false",
	}
	cfg, err := config.Load(nil, func(k string) string { return vars[k] }, nil)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(b.Context(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	var rate, p99 []float64
	b.ResetTimer()
	for round := range b.N {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoadGenerator$", "-test.v")
		cmd.Env = append(os.Environ(),
			loadURLEnv+"="+srv.URL+"/hooks",
			loadCountEnv+"="+strconv.Itoa(perRound),
			loadConcurrencyEnv+"=16",
			loadPrefixEnv+"=round"+strconv.Itoa(round),
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("load generator: %v\n%s", err, out)
		}
		var rep loadReport
		for _, line := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(line, "LOAD "); ok {
				if err := json.Unmarshal([]byte(rest), &rep); err != nil {
					b.Fatal(err)
				}
			}
		}
		if rep.Sent != perRound || rep.Failed != 0 {
			b.Fatalf("load generator sent %d with %d failures, want %d without\n%s", rep.Sent, rep.Failed, perRound, out)
		}
		rate = append(rate, float64(rep.Sent)/rep.Secs)
		p99 = append(p99, rep.P99Ms)
	}
	b.StopTimer()

	var n int64
	if err := s.st.DB.Model(&store.Delivery{}).Count(&n).Error; err != nil {
		b.Fatal(err)
	}
	if n != int64(perRound*b.N) {
		b.Errorf("%d deliveries stored, want %d: some were lost or duplicated", n, perRound*b.N)
	}
	b.ReportMetric(mean(rate), "deliveries/s")
	b.ReportMetric(mean(p99), "p99_ms")
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
