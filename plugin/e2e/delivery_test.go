package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
)

// TestE2ERedeliveryCreatesNoSecondRun sends Gitea's recorded push delivery
// to octavo again, byte for byte with its delivery id and signature, as a
// redelivery from the forge would: octavo accepts it and adds no run.
// Gitea's own replay button is no use here, because it sends the payload
// under a new delivery id.
func TestE2ERedeliveryCreatesNoSecondRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "redeliver")

	sha := e.push(map[string]string{".octavo/ci.star": passingPipeline}, "Add a passing pipeline")
	if st := e.waitStatus(sha); st.State != "success" {
		t.Fatalf("run ended %q (%s), want success", st.State, st.Description)
	}
	d := e.waitDelivery(e.hook().ID, "of the push", func(d giteatest.Delivery) bool {
		return d.Event == "push" && strings.Contains(d.Request.Body, sha)
	})
	if !d.Succeeded {
		t.Fatalf("the original delivery failed with %d: %s", d.Response.Status, d.Response.Body)
	}

	code, body := e.postHook(d.Request.Headers, d.Request.Body)
	if code < 200 || code > 299 {
		t.Errorf("redelivery returned HTTP %d (%s), want 2xx", code, body)
	}
	var ofSHA []apiRun
	for _, r := range e.runs(e.repo.FullName, "refs/heads/main") {
		if r.SHA == sha {
			ofSHA = append(ofSHA, r)
		}
	}
	if len(ofSHA) != 1 {
		t.Errorf("%d runs for %s after the redelivery, want 1: %+v", len(ofSHA), sha, ofSHA)
	}
}

// TestE2EWrongSecretIsRejected points a webhook signed with another secret
// at octavo: octavo rejects the delivery, Gitea's delivery history records
// the failure, and no run is created.
func TestE2EWrongSecretIsRejected(t *testing.T) {
	t.Parallel()
	e := newEnvWithoutRegister(t, "wrong-secret", "")
	hook, err := e.gitea.CreateHook(t.Context(), e.repo.FullName, e.sidecar.URL+"/hooks", "not-the-configured-secret")
	if err != nil {
		t.Fatal(err)
	}

	sha := e.push(map[string]string{".octavo/ci.star": passingPipeline}, "Add a passing pipeline")
	d := e.waitDelivery(hook.ID, "of the push", func(d giteatest.Delivery) bool {
		return d.Event == "push" && strings.Contains(d.Request.Body, sha) && d.Response.Status != 0
	})

	if d.Succeeded {
		t.Errorf("Gitea records delivery %s as succeeded, want failed", d.UUID)
	}
	if d.Response.Status != http.StatusUnauthorized && d.Response.Status != http.StatusForbidden {
		t.Errorf("octavo rejected the wrongly signed delivery with HTTP %d (%s), want 401 or 403", d.Response.Status, d.Response.Body)
	}

	body, code, err := e.get("/api/v1/runs?repo=" + e.repo.FullName)
	if err != nil {
		t.Fatal(err)
	}
	if code == http.StatusOK {
		runs, err := decodeRunList(body)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 0 {
			t.Errorf("a rejected delivery created runs: %+v", runs)
		}
	} else if code != http.StatusNotFound {
		t.Errorf("GET the run list returned HTTP %d (%s), want 200 or 404", code, body)
	}
}

// TestE2ECatchUpBuildsMissedPush stops octavo, pushes while it is down (the
// delivery fails), then starts it again: catch-up builds the missed head.
func TestE2ECatchUpBuildsMissedPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "catch-up", "OCTAVO_CATCH_UP=true")
	hook := e.hook()

	first := e.push(map[string]string{".octavo/ci.star": passingPipeline}, "Add a passing pipeline")
	if st := e.waitStatus(first); st.State != "success" {
		t.Fatalf("first run ended %q (%s), want success", st.State, st.Description)
	}

	if err := e.sidecar.Stop(); err != nil {
		t.Fatal(err)
	}
	missed := e.push(map[string]string{"notes.txt": "pushed while octavo was down\n"}, "Push while octavo is down")
	d := e.waitDelivery(hook.ID, "of the missed push", func(d giteatest.Delivery) bool {
		return d.Event == "push" && strings.Contains(d.Request.Body, missed)
	})
	if d.Succeeded {
		t.Fatalf("delivery %s reached a stopped octavo", d.UUID)
	}

	e.start()
	if st := e.waitStatus(missed); st.State != "success" {
		t.Errorf("missed push's run ended %q (%s), want success", st.State, st.Description)
	}
}

// forgejoFixtures are real Forgejo 11.0.1 deliveries, signed with
// forgejoSecret, kept by the webhook package's tests.
const (
	forgejoFixtures = "../webhook/testdata/forgejo-11.0.1"
	forgejoSecret   = "fixture-secret-7Hq2"
	forgejoRepo     = "forgeadmin/hooks-demo"
)

type fixture struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func loadFixture(t *testing.T, name string) fixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(forgejoFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return fx
}

// TestE2EForgejoDeliveriesAreAccepted replays Forgejo's captured deliveries
// to a running octavo, in the order a forge sends them: every signed one is
// accepted, each push of a ref adds one run, and neither a create event
// nor a redelivery adds any.
func TestE2EForgejoDeliveriesAreAccepted(t *testing.T) {
	t.Parallel()
	e := newEnvWithoutRegister(t, "forgejo-replay", forgejoSecret)

	order := []string{
		"push-two-commits.json",
		"push-two-commits.json", // a redelivery: same delivery id
		"create-branch-slash-unicode.json",
		"push-branch-slash-unicode.json",
		"push-seven-commits.json",
		"push-force.json",
		"create-pr-branch.json",
		"push-pr-branch.json",
		"pull_request-opened.json",
		"push-pr-synchronized.json",
		"pull_request-synchronized.json",
		"push-tag-annotated.json",
		"create-tag-annotated.json",
		"push-tag-lightweight.json",
		"create-tag-lightweight.json",
		"push-tag-deleted.json",
		"delete-tag-deleted.json",
		"delete-branch-deleted.json",
		"push-test-delivery.json",
	}
	for _, name := range order {
		fx := loadFixture(t, name)
		code, body := e.postHook(fx.Headers, fx.Body)
		if code < 200 || code > 299 {
			t.Errorf("%s returned HTTP %d (%s), want 2xx", name, code, body)
		}
	}

	unsigned := loadFixture(t, "push-test-delivery-no-secret.json")
	if code, body := e.postHook(unsigned.Headers, unsigned.Body); code != http.StatusUnauthorized {
		t.Errorf("push-test-delivery-no-secret.json returned HTTP %d (%s), want 401", code, body)
	}

	// Eight pushes move a ref. The redelivery, the test delivery (its
	// before equals its after), the tag deletion and the create, delete and
	// pull_request events add nothing.
	runs := e.runs(forgejoRepo, "")
	if len(runs) != 8 {
		t.Errorf("%d runs after the replay, want 8: %+v", len(runs), runs)
	}
	perRef := map[string]int{}
	for _, r := range runs {
		perRef[r.Ref]++
	}
	for ref, want := range map[string]int{
		"refs/heads/main":              3,
		"refs/heads/feature/café-über": 1,
		"refs/heads/topic/pr-demo":     2,
		"refs/tags/v1.0.0":             1,
		"refs/tags/v1.0.1-light":       1,
	} {
		if perRef[ref] != want {
			t.Errorf("%d runs of %s, want %d", perRef[ref], ref, want)
		}
	}
}
