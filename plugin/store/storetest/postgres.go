// Package storetest starts real databases for tests: a throwaway PostgreSQL
// server in a temporary folder, so queries that behave differently on
// PostgreSQL (row locks, RETURNING, concurrent writers) are tested for real.
package storetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// RequireEnv, when set to 1, turns a missing PostgreSQL installation into a
// test failure instead of a skip. CI sets it.
const RequireEnv = "OCTAVO_REQUIRE_POSTGRES"

// Postgres starts a PostgreSQL server that listens on 127.0.0.1 only, with
// its data and socket in a temporary folder, and returns a DSN for a fresh
// database. The server is stopped when the test ends. Without PostgreSQL's
// server binaries (Debian package postgresql) the test is skipped, unless
// [RequireEnv] is set.
func Postgres(t testing.TB) string {
	t.Helper()

	bin, err := findPostgresBin()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("PostgreSQL is required (%s=1): %v", RequireEnv, err)
		}
		t.Skipf("PostgreSQL server not installed (%v); install Debian's postgresql package to run this test", err)
	}

	dir, err := os.MkdirTemp("", "octavo-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	dataDir := filepath.Join(dir, "data")

	// initdb and postgres refuse to run as root, so as root they run as the
	// postgres system user, which must own the folder.
	var runAs []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root and no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		runAs = []string{"runuser", "-u", "postgres", "--"}
	}

	run := func(name string, args ...string) {
		t.Helper()
		argv := append(append([]string{}, runAs...), filepath.Join(bin, name))
		argv = append(argv, args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}

	run("initdb", "-D", dataDir, "-U", "octavo", "--auth=trust", "--no-sync", "-E", "UTF8")

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=100", port, dir)
	run("pg_ctl", "-D", dataDir, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start")
	t.Cleanup(func() {
		argv := append(append([]string{}, runAs...), filepath.Join(bin, "pg_ctl"), "-D", dataDir, "-m", "immediate", "-w", "stop")
		_ = exec.Command(argv[0], argv[1:]...).Run()
	})

	run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "octavo", "octavo")
	return fmt.Sprintf("host=127.0.0.1 port=%d user=octavo dbname=octavo sslmode=disable connect_timeout=10", port)
}

// findPostgresBin returns the newest /usr/lib/postgresql/N/bin folder that
// has initdb, or the folder of an initdb on PATH.
func findPostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no initdb in /usr/lib/postgresql/*/bin or on PATH")
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
