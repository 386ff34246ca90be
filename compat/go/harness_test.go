// Package compat is podid's SDK matrix, Go leg: the whoami program (aws-sdk-go-v2's default
// configuration and credential chain) run under `podid exec` against a podid on free loopback
// ports in a temp dir.
package compat

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

const account = "000000000000"

const trustPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`

// podidBin is PODID_BIN, else the workspace's debug build.
func podidBin() string {
	if bin := os.Getenv("PODID_BIN"); bin != "" {
		return bin
	}
	abs, _ := filepath.Abs("../../target/debug/podid")
	return abs
}

// cleanEnv is the environment without the developer's AWS or podid settings, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "PODID_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readDevEnv(path string) map[string]string {
	env := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return env
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || !strings.HasPrefix(line, "export ") {
			continue
		}
		env[name] = strings.Trim(value, `'"`)
	}
	return env
}

// podid is a running control plane and node agent.
type podid struct {
	dataDir, endpoint, agentURL string
	env                         map[string]string
}

type proc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *proc) tail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return string(data)
}

// stop sends SIGTERM and waits (SIGKILL after 20 s).
func (p *proc) stop() {
	if p.hasExited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// startProc starts `podid args...` logging to dir/name.log; it is stopped when the test ends.
func startProc(t *testing.T, dir, name string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(podidBin(), args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = log, log, env
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting podid %s: %v", name, err)
	}
	p := &proc{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.stop(); log.Close() })
	return p
}

func until(t *testing.T, what string, p *proc, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if p.hasExited() {
			t.Fatalf("%s exited:\n%s", what, p.tail())
		}
		if check() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 60s:\n%s", what, p.tail())
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startPodid runs `podid dev` in a temp dir. With maxCredentialDuration (e.g. "60s"), `podid dev`
// only initialises the data dir (signing key, cluster dev, dev.env) and is stopped; then
// `podid server --max-credential-duration` and `podid agent` serve from the same data dir,
// because `podid dev` has no such flag.
func startPodid(t *testing.T, maxCredentialDuration string) *podid {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	dev := startProc(t, dir, "dev", cleanEnv(), "dev", "--data-dir", dir, "--listen", listen, "--log-format", "json")
	envFile := filepath.Join(dir, "dev.env")
	until(t, "podid dev", dev, func() bool { _, ok := readDevEnv(envFile)["PODID_AGENT_URL"]; return ok })
	env := readDevEnv(envFile)
	p := &podid{dataDir: dir, endpoint: endpoint, agentURL: env["PODID_AGENT_URL"], env: env}
	if maxCredentialDuration == "" {
		return p
	}
	dev.stop()
	server := startProc(t, dir, "server", cleanEnv(), "server", "--data-dir", dir, "--listen", listen,
		"--log-format", "json", "--max-credential-duration", maxCredentialDuration)
	until(t, "podid server", server, func() bool { return httpOK(endpoint + "/healthz") })
	agentPort, probePort, metricsPort := freePort(t), freePort(t), freePort(t)
	agent := startProc(t, dir, "agent",
		cleanEnv("AWS_ACCESS_KEY_ID="+env["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY="+env["AWS_SECRET_ACCESS_KEY"], "AWS_REGION="+env["AWS_REGION"]),
		"agent", "--cluster-name", "dev", "--endpoint", endpoint, "--bind-hosts", "127.0.0.1",
		"--port", strconv.Itoa(agentPort), "--probe-port", strconv.Itoa(probePort),
		"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(metricsPort),
		"--state-dir", filepath.Join(dir, "agent-state"))
	until(t, "podid agent", agent, func() bool { return httpOK(fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)) })
	p.agentURL = fmt.Sprintf("http://127.0.0.1:%d", agentPort)
	return p
}

// associate creates role `role` and associates it with default/serviceAccount in cluster dev,
// with the admin key from dev.env.
func (p *podid) associate(t *testing.T, role, serviceAccount string) {
	t.Helper()
	ctx := context.Background()
	cfg := aws.Config{
		Region:           p.env["AWS_REGION"],
		Credentials:      credentials.NewStaticCredentialsProvider(p.env["AWS_ACCESS_KEY_ID"], p.env["AWS_SECRET_ACCESS_KEY"], ""),
		RetryMaxAttempts: 1,
		BaseEndpoint:     aws.String(p.endpoint),
	}
	created, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{
		RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trustPolicy),
	})
	if err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	_, err = eks.NewFromConfig(cfg).CreatePodIdentityAssociation(ctx, &eks.CreatePodIdentityAssociationInput{
		ClusterName: aws.String("dev"), Namespace: aws.String("default"),
		ServiceAccount: aws.String(serviceAccount), RoleArn: created.Role.Arn,
	})
	if err != nil {
		t.Fatalf("CreatePodIdentityAssociation: %v", err)
	}
}

// execAsPod runs cmd under `podid exec` as pod `pod` of default/serviceAccount.
func (p *podid) execAsPod(serviceAccount, pod string, cmd ...string) (stdout, stderr string, err error) {
	args := append([]string{"exec", "--data-dir", p.dataDir, "--agent-url", p.agentURL, "--endpoint", p.endpoint,
		"--namespace", "default", "--service-account", serviceAccount, "--pod-name", pod, "--"}, cmd...)
	c := exec.Command(podidBin(), args...)
	c.Env = cleanEnv()
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err = c.Run()
	return out.String(), errOut.String(), err
}
