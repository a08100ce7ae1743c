// Package e2e holds the end-to-end tests: a real Gitea built by
// [giteatest], the octavo and octavo-runner binaries built from this
// checkout, real pushes over HTTP and real webhook deliveries. Each test
// uses its own repository on one shared Gitea, and its own octavo process,
// port and data dir.
package e2e
