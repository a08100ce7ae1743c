package giteatest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestPushReachesWebhookAndHistory pushes through a clone and checks that
// the webhook delivery arrives signed and that the delivery history records
// the receiver's response.
func TestPushReachesWebhookAndHistory(t *testing.T) {
	inst := Shared(t)
	ctx := t.Context()

	got := make(chan http.Header, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer receiver.Close()

	repo, err := inst.CreateRepo(ctx, "harness-push")
	if err != nil {
		t.Fatal(err)
	}
	hook, err := inst.CreateHook(ctx, repo.FullName, receiver.URL+"/hooks", "harness-secret", "push")
	if err != nil {
		t.Fatal(err)
	}
	clone, err := inst.Clone(ctx, repo.FullName, filepath.Join(t.TempDir(), "work"))
	if err != nil {
		t.Fatal(err)
	}
	sha, err := clone.CommitAndPush(ctx, map[string]string{"hello.txt": "hello\n"}, "add hello")
	if err != nil {
		t.Fatal(err)
	}

	select {
	case h := <-got:
		if h.Get("X-Gitea-Signature") == "" {
			t.Errorf("delivery headers %v have no X-Gitea-Signature", h)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook delivery within 30s of the push")
	}

	var deliveries []Delivery
	deadline := time.Now().Add(30 * time.Second)
	for {
		deliveries, err = inst.Deliveries(ctx, hook.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(deliveries) > 0 && deliveries[0].Delivered && deliveries[0].Response.Status != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery history %+v has no delivery with a response after 30s", deliveries)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d := deliveries[0]
	if d.Succeeded {
		t.Errorf("delivery %s succeeded, want failed after a 401", d.UUID)
	}
	if d.Response.Status != http.StatusUnauthorized {
		t.Errorf("delivery response status is %d, want 401", d.Response.Status)
	}
	if !strings.Contains(d.Request.Body, sha) {
		t.Errorf("delivery body does not mention the pushed sha %s", sha)
	}

	head, err := inst.Commit(ctx, repo.FullName, "main")
	if err != nil {
		t.Fatal(err)
	}
	if head != sha {
		t.Errorf("main is at %s after the push, want %s", head, sha)
	}
}

// TestStartReusesStoppedDir starts a second instance on a dir, stops it and
// starts it again, checking that the admin and token survive the restart.
func TestStartReusesStoppedDir(t *testing.T) {
	ctx := t.Context()
	bin, err := Build(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}

	first, err := Start(ctx, bin, dir, port, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	second, err := Start(ctx, bin, dir, port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()

	if second.Token != first.Token {
		t.Error("the restarted instance minted a new token, want the stored one reused")
	}
	if second.Admin != first.Admin || second.Password != first.Password {
		t.Errorf("admin after restart is %q, want %q with the same password", second.Admin, first.Admin)
	}
}

// TestStartStopsLeftoverOfSameDir starts an instance and, without stopping
// it, starts another on the same dir and port, as a demo does after its
// predecessor was killed: the leftover is stopped and the new one serves.
func TestStartStopsLeftoverOfSameDir(t *testing.T) {
	ctx := t.Context()
	bin, err := Build(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}

	leftover, err := Start(ctx, bin, dir, port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer leftover.Stop()
	next, err := Start(ctx, bin, dir, port, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Stop()

	select {
	case <-leftover.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the first instance still runs after the second started")
	}
	if err := next.Do(ctx, http.MethodGet, "/user", nil, nil); err != nil {
		t.Errorf("the new instance does not serve its API: %v", err)
	}
}
