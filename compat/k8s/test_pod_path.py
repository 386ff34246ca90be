"""A pod's whole path on a real API server: `podid webhook` mutates the pod at admission, the
test plays the kubelet (TokenRequest for the projected volume, the container's environment from
the stored spec), and the real aws CLI gets credentials from `podid-agent`."""
import base64
import json
import os
import re
import subprocess
import time
import urllib.request
import uuid

import pytest

from conftest import AGENT_COMMAND, PODID_BIN, clean_env
from kube import NOBODY_TOKEN, WEBHOOK_TOKEN, free_port, openssl, pod_manifest

LINK_LOCAL_URI = "http://169.254.170.23/v1/credentials"
TOKEN_FILE = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"
EXCLUDED_NAMESPACE_LABEL = "podid.dev/webhook"


def wait_http(url, ctx=None, seconds=30, want=200):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
                if r.status == want:
                    return r.read().decode()
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready: {last}")


class Stack:
    """podid webhook + podid-agent for the `setup` cluster, and the webhook registered with the
    API server."""

    def __init__(self, setup, workdir):
        self.setup, self.kube, self.dir = setup, setup.kube, workdir
        creds = os.path.join(workdir, "node-credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % setup.node_key)
        os.chmod(creds, 0o600)
        self.creds = creds
        self.procs = []
        self._start_webhook()
        self._register_webhook()
        self._start_agent()

    def _spawn(self, name, args, env=None):
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=log, env=env or clean_env())
        self.procs.append(proc)
        return proc

    def _start_webhook(self):
        d = self.dir
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "webhook.key", "-out", "webhook.crt", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", cwd=d)
        # The webhook's RBAC, as docs/kubernetes.md lists it: read service accounts' annotations.
        self.kube.apply({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "podid-webhook"},
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["list", "watch"]}]})
        self.kube.apply({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "podid-webhook"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "podid-webhook"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "podid-webhook"}]})
        self.webhook, self.webhook_port, self.webhook_metrics = self.spawn_webhook(
            "webhook", self.kube.kubeconfig_for(WEBHOOK_TOKEN, "webhook-kubeconfig"))
        assert wait_http(f"https://127.0.0.1:{self.webhook_port}/readyz", self.tls()).strip() == "ok"

    def tls(self):
        import ssl
        return ssl.create_default_context(cafile=os.path.join(self.dir, "webhook.crt"))

    def spawn_webhook(self, name, kubeconfig):
        """A `podid webhook` on free loopback ports watching service accounts as `kubeconfig`'s user."""
        d = self.dir
        port, metrics = free_port(), free_port()
        proc = self._spawn(name, [
            PODID_BIN, "webhook", "--cluster-name", self.setup.cluster,
            "--endpoint", self.setup.podid.endpoint,
            "--tls-cert-file", f"{d}/webhook.crt", "--tls-key-file", f"{d}/webhook.key",
            "--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics}",
            "--kubeconfig", kubeconfig,
            "--credentials-file", self.creds, "--sync-interval", "1s", "--log-format", "json"])
        return proc, port, metrics

    def _register_webhook(self):
        with open(os.path.join(self.dir, "webhook.crt"), "rb") as f:
            ca_bundle = base64.b64encode(f.read()).decode()
        # What docs/kubernetes.md tells users to apply, with the test's URL and CA.
        self.kube.apply({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "podid-webhook"},
            "webhooks": [{
                "name": "pod-identity.podid.dev",
                "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": "Ignore", "reinvocationPolicy": "IfNeeded", "timeoutSeconds": 10,
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                           "resources": ["pods"]}],
                "namespaceSelector": {"matchExpressions": [
                    {"key": EXCLUDED_NAMESPACE_LABEL, "operator": "NotIn", "values": ["disabled"]}]},
                "objectSelector": {"matchExpressions": [
                    {"key": "eks.amazonaws.com/skip-pod-identity-webhook", "operator": "DoesNotExist"}]},
                "clientConfig": {"url": f"https://127.0.0.1:{self.webhook_port}/mutate",
                                 "caBundle": ca_bundle},
            }]})

    def _start_agent(self):
        self.agent_port, probe, metrics = free_port(), free_port(), free_port()
        env = clean_env()
        env["AWS_SHARED_CREDENTIALS_FILE"] = self.creds
        self._spawn("agent", [
            *AGENT_COMMAND, "--cluster-name", self.setup.cluster, "--endpoint", self.setup.podid.endpoint,
            "-b", "127.0.0.1", "-p", str(self.agent_port), "--probe-port", str(probe),
            "--metrics-address", "127.0.0.1", "--metrics-port", str(metrics),
            "--state-dir", os.path.join(self.dir, "agent-state"), "--log-format", "json"], env)
        wait_http(f"http://127.0.0.1:{probe}/healthz")

    def metric(self, name, metrics_port=None):
        text = wait_http(f"http://127.0.0.1:{metrics_port or self.webhook_metrics}/metrics")
        m = re.search(rf"^podid_webhook_{name} (\d+)", text, re.M)
        return int(m.group(1)) if m else -1

    def associations_known(self):
        return self.metric("associations")

    def wait_for_sync(self):
        """Until the webhook's cached set holds every association of the cluster."""
        eks = self.setup.podid.client("eks")
        want = len(eks.list_pod_identity_associations(clusterName=self.setup.cluster,
                                                      maxResults=100)["associations"])
        deadline = time.time() + 15
        while self.associations_known() < want:
            assert time.time() < deadline, "the webhook never learned the new association"
            time.sleep(0.2)

    def stop_webhook(self):
        self.webhook.terminate()
        self.webhook.wait(timeout=20)

    def stop(self):
        self.kube.kubectl("delete", "mutatingwebhookconfiguration", "podid-webhook", check=False)
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)


@pytest.fixture(scope="module")
def stack(setup, tmp_path_factory):
    s = Stack(setup, str(tmp_path_factory.mktemp("stack")))
    yield s
    s.stop()


def untouched(pod):
    containers = pod["spec"]["containers"]
    names = {e["name"] for c in containers for e in c.get("env", [])}
    return ("AWS_CONTAINER_CREDENTIALS_FULL_URI" not in names
            and not any(v["name"] == "eks-pod-identity-token" for v in pod["spec"].get("volumes", []))
            and "eks.amazonaws.com/pod-identity" not in pod["metadata"].get("labels", {}))


def play_kubelet(kube, pod, root):
    """What the kubelet would do for the pod's `app` container: request the projected token the
    volume describes, write it where the mount says (under `root`), and build the environment."""
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "eks-pod-identity-token")
    source = volume["projected"]["sources"][0]["serviceAccountToken"]
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "app")
    mount = next(m for m in container["volumeMounts"] if m["name"] == "eks-pod-identity-token")
    assert mount["readOnly"] is True
    token = kube.create_token(pod["metadata"]["namespace"], pod["spec"]["serviceAccountName"], pod=pod,
                              audience=source["audience"], duration=f"{source['expirationSeconds']}s")
    path = root + mount["mountPath"] + "/" + source["path"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(token)
    return {e["name"]: e["value"] for e in container["env"]}, path


def test_a_pods_whole_path(stack, tmp_path):
    setup, kube = stack.setup, stack.kube
    sa = setup.service_account()
    stack.wait_for_sync()
    created = kube.create(pod_manifest("web-" + uuid.uuid4().hex[:6], sa, node_name="node-without-object"))
    pod = kube.get("pod", created["metadata"]["name"])

    # The mutation, as the API server stored it.
    assert pod["metadata"]["labels"]["eks.amazonaws.com/pod-identity"] == "enabled"
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "eks-pod-identity-token")
    source = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert source["audience"] == "pods.eks.amazonaws.com"
    assert source["path"] == "eks-pod-identity-token"
    assert 79200 <= source["expirationSeconds"] <= 86400
    assert volume["projected"]["defaultMode"] == 420  # the API server's defaulting
    env, token_path = play_kubelet(kube, pod, str(tmp_path / "rootfs"))
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == LINK_LOCAL_URI
    assert env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == TOKEN_FILE
    assert token_path.endswith(TOKEN_FILE)

    # The container's environment, with the agent's link-local address mapped to its loopback
    # port and the token file to where the test wrote it; nothing else set.
    run_env = clean_env()
    run_env.update(env)
    run_env.update({
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": LINK_LOCAL_URI.replace(
            "169.254.170.23", f"127.0.0.1:{stack.agent_port}"),
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": token_path,
        "AWS_ENDPOINT_URL": setup.podid.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
    })
    out = subprocess.run(["aws", "sts", "get-caller-identity", "--output", "json"], env=run_env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    arn = json.loads(out.stdout)["Arn"]
    pod_prefix = pod["metadata"]["name"][:10]
    assert arn.startswith(f"arn:aws:sts::000000000000:assumed-role/{setup.role}/eks-{setup.cluster}-{pod_prefix}-"), arn

    from test_tokens import session_tags
    tags = session_tags(setup, arn)
    assert (tags["kubernetes-pod-name"], tags["kubernetes-pod-uid"]) == (
        pod["metadata"]["name"], pod["metadata"]["uid"])


def test_pods_the_webhook_must_not_touch(stack):
    setup, kube = stack.setup, stack.kube
    associated = setup.service_account()
    stack.wait_for_sync()
    # A namespace the webhook's namespaceSelector excludes, with an associated account.
    ns = "skip-" + uuid.uuid4().hex[:6]
    kube.create({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": ns, "labels": {EXCLUDED_NAMESPACE_LABEL: "disabled"}}})
    excluded_sa = setup.service_account(namespace=ns)
    stack.wait_for_sync()
    pods = [
        kube.create(pod_manifest("excluded-" + uuid.uuid4().hex[:6], excluded_sa, namespace=ns)),
        kube.create(pod_manifest("loner-" + uuid.uuid4().hex[:6], setup.service_account(associate=False))),
    ]
    skipped = pod_manifest("skipped-" + uuid.uuid4().hex[:6], associated)
    skipped["metadata"]["labels"] = {"eks.amazonaws.com/skip-pod-identity-webhook": "true"}
    pods.append(kube.create(skipped))
    for pod in pods:
        stored = kube.get("pod", pod["metadata"]["name"], namespace=pod["metadata"]["namespace"])
        assert untouched(stored), stored["metadata"]["name"]


def pod_settings(pod):
    """The projected token's lifetime and the app container's environment."""
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "eks-pod-identity-token")
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "app")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    return volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"], env


def test_service_account_annotations_reach_the_pod(stack):
    """The webhook watches service accounts: their token-expiration and sts-regional-endpoints
    annotations shape the pod; a pod annotation still wins; changes are followed."""
    setup, kube = stack.setup, stack.kube
    sa = setup.service_account(annotations={
        "eks.amazonaws.com/token-expiration": "3600",
        "eks.amazonaws.com/sts-regional-endpoints": "true"})
    stack.wait_for_sync()
    pod = kube.create(pod_manifest("sa-annotated-" + uuid.uuid4().hex[:6], sa))
    seconds, env = pod_settings(kube.get("pod", pod["metadata"]["name"]))
    assert seconds == 3600
    assert env["AWS_STS_REGIONAL_ENDPOINTS"] == "regional"

    pinned = pod_manifest("pod-annotated-" + uuid.uuid4().hex[:6], sa)
    pinned["metadata"]["annotations"] = {"eks.amazonaws.com/token-expiration": "1200"}
    seconds, _ = pod_settings(kube.get("pod", kube.create(pinned)["metadata"]["name"]))
    assert seconds == 1200

    # An edit reaches pods created after the watch delivers it.
    kube.kubectl("annotate", "--overwrite", "serviceaccount", sa,
                 "eks.amazonaws.com/token-expiration=7200", "eks.amazonaws.com/sts-regional-endpoints-")
    deadline = time.time() + 15
    while True:
        pod = kube.create(pod_manifest("sa-edited-" + uuid.uuid4().hex[:6], sa))
        seconds, env = pod_settings(kube.get("pod", pod["metadata"]["name"]))
        if seconds == 7200 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert seconds == 7200
    assert "AWS_STS_REGIONAL_ENDPOINTS" not in env


def test_a_service_account_created_with_its_pod(stack):
    """The association exists first; the service account and the pod are created back to back
    (as `kubectl apply -f` of one manifest does): the pod still gets the account's annotation,
    from the watch or after the grace period's wait."""
    setup, kube = stack.setup, stack.kube
    names = ["sa-late-" + uuid.uuid4().hex[:6] for _ in range(5)]
    for name in names:
        setup.associate("default", name)
    stack.wait_for_sync()
    for name in names:
        kube.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": name, "namespace": "default",
            "annotations": {"eks.amazonaws.com/token-expiration": "5400"}}})
        pod = kube.create(pod_manifest(name + "-pod", name))
        assert pod_settings(kube.get("pod", pod["metadata"]["name"]))[0] == 5400, name
    assert stack.metric("service_account_unknown_total") == 0


def test_without_rights_to_read_service_accounts_the_webhook_is_not_ready(stack):
    """A webhook whose user may not list service accounts says so on /readyz and in its metrics,
    rather than silently mutating pods without their accounts' annotations."""
    proc, port, metrics = stack.spawn_webhook("webhook-nobody",
                                              stack.kube.kubeconfig_for(NOBODY_TOKEN, "nobody-kubeconfig"))
    try:
        deadline = time.time() + 20
        while stack.metric("service_account_watch_errors_total", metrics) < 1:
            assert time.time() < deadline, "the watch never reported its failure"
            time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=stack.tls(), timeout=5)
        assert refused.value.code == 503
        assert refused.value.read().decode() == "service accounts not listed yet"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    with open(os.path.join(stack.dir, "webhook-nobody.log")) as f:
        log = f.read()
    assert "watching service accounts failed" in log
    assert "forbidden" in log.lower()


def test_with_the_webhook_down_pods_are_still_admitted(stack):
    """failurePolicy Ignore: podid being down never blocks a deployment."""
    setup, kube = stack.setup, stack.kube
    sa = setup.service_account()
    stack.stop_webhook()
    pod = kube.create(pod_manifest("down-" + uuid.uuid4().hex[:6], sa))
    assert untouched(kube.get("pod", pod["metadata"]["name"]))
