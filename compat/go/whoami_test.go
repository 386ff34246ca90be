package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// whoamiBin is the whoami program, built once by TestMain.
var whoamiBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "podid-compat-go-")
	if err != nil {
		panic(err)
	}
	whoamiBin = filepath.Join(dir, "whoami")
	build := exec.Command("go", "build", "-o", whoamiBin, "./whoami")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		panic("building whoami: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestDefaultChainGetsPodIdentityCredentials(t *testing.T) {
	t.Parallel()
	p := startPodid(t, "")
	p.associate(t, "go-app", "go-app")
	stdout, stderr, err := p.execAsPod("go-app", "go-pod", whoamiBin)
	if err != nil {
		t.Fatalf("whoami: %v\n%s", err, stderr)
	}
	want := regexp.MustCompile(`^ARN arn:aws:sts::` + account + `:assumed-role/go-app/eks-dev-go-pod-\S+$`)
	if !want.MatchString(strings.TrimSpace(stdout)) {
		t.Fatalf("unexpected output %q (stderr %s)", stdout, stderr)
	}
}

func TestNoAssociationNoCredentials(t *testing.T) {
	t.Parallel()
	p := startPodid(t, "")
	stdout, stderr, err := p.execAsPod("nobody", "go-pod", whoamiBin)
	if err == nil {
		t.Fatalf("whoami succeeded without an association: %s", stdout)
	}
	if !strings.Contains(stderr, "No Pod Identity Association found for service account default/nobody") {
		t.Fatalf("unexpected failure: %s", stderr)
	}
}

// Long-running: 60 s credentials, GetCallerIdentity every 2 s for 80 s. The SDK (whose
// container credential cache renews within 5 minutes of expiry) must never fail a call and must
// hold more than one access key over the run.
func TestCredentialsRenewAcrossTheirLifetime(t *testing.T) {
	if testing.Short() {
		t.Skip("long-running")
	}
	t.Parallel()
	const lifetime, run = "60s", "80"
	p := startPodid(t, lifetime)
	p.associate(t, "go-long", "go-long")
	stdout, stderr, err := p.execAsPod("go-long", "go-long", whoamiBin, run, "2")
	if err != nil {
		t.Fatalf("whoami loop: %v\n%s\n%s", err, stderr, stdout)
	}
	line := regexp.MustCompile(`^ARN arn:aws:sts::` + account + `:assumed-role/go-long/eks-dev-go-long-\S+ KEY (\S+)$`)
	keys := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	for _, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected line %q", l)
		}
		keys[m[1]] = true
	}
	t.Logf("%d calls, %d access keys", len(lines), len(keys))
	if len(lines) < 25 {
		t.Fatalf("only %d calls", len(lines))
	}
	if len(keys) < 2 {
		t.Fatalf("one access key over %ss of %s credentials: %v", run, lifetime, keys)
	}
}
