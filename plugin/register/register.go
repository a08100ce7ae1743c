// Package register implements `octavo register`: it creates, updates or
// removes octavo's webhook on a Gitea or Forgejo repository or organisation,
// then requests a test delivery from the forge and reports whether it reached
// octavo serve.
//
// It reads the same settings as octavo serve: the environment variables and
// the optional config file of [config.Settings]. The token and the webhook
// secret are never taken from the command line, so they stay out of the
// process list, and they are never printed.
package register

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/octavo-ci/octavo/plugin/config"
	"github.com/octavo-ci/octavo/plugin/forge"
)

// Exit codes of [Main].
const (
	exitOK = 0
	// exitFailed: a setting is missing or invalid, or a forge call failed.
	exitFailed = 1
	// exitUsage: the command line is wrong.
	exitUsage = 2
	// exitNotDelivered: the hook is in place, but the test delivery did not
	// reach octavo serve within the wait.
	exitNotDelivered = 3
)

// HookPath is the path under the public URL where octavo serve receives
// webhooks; the hook URL is PUBLIC_URL + "hooks".
const HookPath = "hooks"

// defaultWait bounds the wait for the test delivery. Gitea and Forgejo
// queue deliveries and usually send them within a second.
const defaultWait = 20 * time.Second

// pollEvery is how often the deliveries table is read while waiting.
const pollEvery = 200 * time.Millisecond

// forgeTimeout bounds each forge call.
const forgeTimeout = 30 * time.Second

// options is the parsed command line.
type options struct {
	repo       string // OWNER/NAME, or "" with org
	org        string
	remove     bool
	wait       time.Duration
	configFile string
}

// env is the part of the process environment that [run] uses, replaced in
// tests.
type env struct {
	getenv    func(string) string
	hc        *http.Client
	pollEvery time.Duration
}

// Main runs `octavo register` with args (the words after "register") and
// returns the process exit code:
//   - 0: the hook is in place, and the test delivery arrived or was not
//     requested;
//   - 1: a setting is missing or invalid, or a forge call failed;
//   - 2: the command line is wrong;
//   - 3: the hook is in place, but no test delivery arrived.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, args, env{
		getenv:    os.Getenv,
		hc:        &http.Client{Timeout: forgeTimeout},
		pollEvery: pollEvery,
	}, stdout, stderr)
}

func run(ctx context.Context, args []string, e env, stdout, stderr io.Writer) int {
	opts, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "octavo register: %v\n", err)
		return exitUsage
	}

	var loadArgs []string
	if opts.configFile != "" {
		loadArgs = []string{"-config", opts.configFile}
	}
	cfg, err := config.Load(loadArgs, e.getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "octavo register: invalid settings:\n%v\n", err)
		return exitFailed
	}
	if cfg.ForgeURL == nil {
		fmt.Fprintln(stderr, "octavo register: OCTAVO_FORGE_URL is missing: set it to the forge's base URL, such as https://git.example.com/")
		return exitFailed
	}
	if cfg.ForgeToken == "" {
		fmt.Fprintln(stderr, "octavo register: OCTAVO_FORGE_TOKEN is missing: set it (or OCTAVO_FORGE_TOKEN_FILE) to a token with the write:repository scope (write:organization for --org)")
		return exitFailed
	}

	if e.getenv("OCTAVO_PUBLIC_URL") == "" && cfg.PublicURL.String() == "http://"+cfg.Listen+"/" {
		// The default suits only a forge on the same host as octavo serve.
		fmt.Fprintf(stderr, "octavo register: note: OCTAVO_PUBLIC_URL is not set, so the hook goes to %s%s (the listen address); set OCTAVO_PUBLIC_URL to the URL the forge reaches octavo serve at\n", cfg.PublicURL, HookPath)
	}

	r := &registrar{
		cfg:       cfg,
		client:    forge.New(cfg.ForgeURL.String(), string(cfg.ForgeToken), cfg.ForgeKind, e.hc),
		out:       stdout,
		hookURL:   cfg.PublicURL.String() + HookPath,
		shownURL:  cfg.PublicURL.Redacted() + HookPath,
		wait:      opts.wait,
		pollEvery: e.pollEvery,
	}
	code, err := r.run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "octavo register: %v\n", err)
		if h := hint(err, opts); h != "" {
			fmt.Fprintf(stderr, "  %s\n", h)
		}
		return exitFailed
	}
	return code
}

// hint returns the setting to check for a failed forge call, or "" when
// the error names its cause well enough.
func hint(err error, opts options) string {
	scope := "write:repository"
	if opts.org != "" {
		scope = "write:organization"
	}
	var transportErr *url.Error
	switch {
	case errors.Is(err, forge.ErrUnauthorized):
		return "The forge rejected OCTAVO_FORGE_TOKEN (or OCTAVO_FORGE_TOKEN_FILE): set it to a valid token with the " + scope + " scope, created by a user with admin rights on the " + targetNoun(opts) + "."
	case errors.Is(err, forge.ErrNotFound) && opts.org != "":
		return "Check the organisation name, and that the user of OCTAVO_FORGE_TOKEN can see it: a forge responds 404 to a token that may not. --org takes an organisation, not a user: register a user's repositories one by one as OWNER/REPO."
	case errors.Is(err, forge.ErrNotFound):
		return "Check the repository name, and that the user of OCTAVO_FORGE_TOKEN can see it: a forge responds 404 to a token that may not."
	case errors.As(err, &transportErr) && !errors.Is(err, context.Canceled):
		return "Check OCTAVO_FORGE_URL and that the forge is up: no response arrived from it."
	default:
		return ""
	}
}

func targetNoun(opts options) string {
	if opts.org != "" {
		return "organisation"
	}
	return "repository"
}

// parseArgs reads flags before and after the one positional argument, so
// both `register --remove o/r` and `register o/r --remove` work.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	opts := options{wait: defaultWait}
	fs := flag.NewFlagSet("octavo register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opts.org, "org", "", "register the hook on organisation `ORG` (every repository it owns) instead of one repository")
	fs.BoolVar(&opts.remove, "remove", false, "delete octavo's hook instead of creating or updating it")
	fs.DurationVar(&opts.wait, "wait", defaultWait, "how long to wait for the test delivery to reach octavo serve; 0 skips the test delivery")
	fs.StringVar(&opts.configFile, "config", "", "JSON config `file` with the settings of octavo serve (default: OCTAVO_CONFIG)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: octavo register [flags] OWNER/REPO
       octavo register [flags] --org ORG

Creates or updates octavo's webhook (PUBLIC_URL/hooks) on the forge, leaves
every other hook alone, then sends a test delivery and reports whether it
reached octavo serve. Reads OCTAVO_FORGE_URL, OCTAVO_FORGE_KIND,
OCTAVO_FORGE_TOKEN[_FILE], OCTAVO_WEBHOOK_SECRET[_FILE], OCTAVO_PUBLIC_URL and
OCTAVO_DATA_DIR / OCTAVO_DATABASE like octavo serve.

`)
		fs.PrintDefaults()
	}

	var positional []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return options{}, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}

	switch {
	case opts.org != "" && len(positional) > 0:
		return options{}, fmt.Errorf("give either OWNER/REPO or --org ORG, not both (got %q and --org %q)", positional[0], opts.org)
	case opts.org != "":
		if strings.Contains(opts.org, "/") {
			return options{}, fmt.Errorf("invalid organisation %q: give its name without slashes", opts.org)
		}
	case len(positional) == 0:
		return options{}, errors.New("missing repository: give OWNER/REPO, or --org ORG for an organisation")
	case len(positional) > 1:
		return options{}, fmt.Errorf("one repository at a time: got %q", positional)
	default:
		if _, _, err := forge.SplitFullName(positional[0]); err != nil {
			return options{}, err
		}
		opts.repo = positional[0]
	}
	if opts.wait < 0 {
		return options{}, fmt.Errorf("invalid --wait %v: use 0 to skip the test delivery or a positive duration such as 20s", opts.wait)
	}
	return opts, nil
}
