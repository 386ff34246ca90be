"""A real Kubernetes API server on loopback for podid's tests: etcd + kube-apiserver, nothing else.

No kubelet, scheduler or controller-manager runs, so pods stay Pending, namespaces get no
`default` service account and deletions need `--force`; everything podid touches (TokenRequest,
OIDC discovery, admission webhooks, validation) is the real API server's own behaviour.

The binaries come from compat/k8s/build-apiserver.sh (built once per version, cached outside
the work tree); etcd from Debian's etcd-server package (scripts/test installs it).
"""
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import textwrap
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ADMIN_TOKEN = "podid-test-admin-token"
# A second user with no rights at all: the API server's own RBAC decides what it may read.
NOBODY_TOKEN = "podid-test-nobody-token"
# The webhook's user: RBAC grants it exactly what docs/kubernetes.md lists (tests apply it).
WEBHOOK_TOKEN = "podid-test-webhook-token"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubernetes_bin_dir():
    """The folder with kube-apiserver and kubectl (built on first use)."""
    out = subprocess.run([os.path.join(HERE, "build-apiserver.sh")], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class KubeApiServer:
    """etcd + kube-apiserver in `workdir`, with a kubeconfig for an admin (system:masters)."""

    def __init__(self, workdir):
        self.dir = workdir
        self.bin = kubernetes_bin_dir()
        self.kubectl_bin = os.path.join(self.bin, "kubectl")
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.etcd = self.apiserver = None
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        self.ca = os.path.join(workdir, "ca.crt")
        # Signing keys: the current one signs; every listed one verifies (rotation).
        self.signing_key = os.path.join(workdir, "sa-1.key")
        self.verify_keys = [os.path.join(workdir, "sa-1.pub")]

    # --- lifecycle -----------------------------------------------------------------------
    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self._certificates()
        self.new_signing_key("sa-1")
        with open(os.path.join(self.dir, "tokens.csv"), "w") as f:
            f.write(f'{ADMIN_TOKEN},podid-admin,uid-admin,"system:masters"\n')
            f.write(f"{NOBODY_TOKEN},nobody,uid-nobody\n")
            f.write(f"{WEBHOOK_TOKEN},podid-webhook,uid-webhook\n")
        self._write_kubeconfig(self.kubeconfig, ADMIN_TOKEN)
        self._start_etcd()
        self._start_apiserver()
        return self

    def stop(self):
        for proc in (self.apiserver, self.etcd):
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def restart_apiserver(self):
        """Restart with the current signing key and verification keys (a key rotation)."""
        proc, self.apiserver = self.apiserver, None
        proc.terminate()
        proc.wait(timeout=30)
        self._start_apiserver()

    def new_signing_key(self, name):
        """Generate a key; it signs from the next (re)start, and the old ones still verify."""
        openssl("genrsa", "-out", f"{name}.key", "2048", cwd=self.dir)
        openssl("rsa", "-in", f"{name}.key", "-pubout", "-out", f"{name}.pub", cwd=self.dir)
        self.signing_key = os.path.join(self.dir, f"{name}.key")
        pub = os.path.join(self.dir, f"{name}.pub")
        if pub not in self.verify_keys:
            self.verify_keys.append(pub)

    def _certificates(self):
        d = self.dir
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
                "-subj", "/CN=podid-test-ca", "-days", "2", cwd=d)
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key", "-out", "apiserver.csr",
                "-subj", "/CN=kube-apiserver", cwd=d)
        openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "apiserver.crt", "-days", "2", "-extfile", "san.ext", cwd=d)

    def _write_kubeconfig(self, path, token):
        with open(path, "w") as f:
            f.write(textwrap.dedent(f"""\
                apiVersion: v1
                kind: Config
                clusters:
                - name: podid-test
                  cluster:
                    server: {self.url}
                    certificate-authority: {self.ca}
                users:
                - name: user
                  user:
                    token: {token}
                contexts:
                - name: podid-test
                  context:
                    cluster: podid-test
                    user: user
                current-context: podid-test
                """))

    def kubeconfig_for(self, token, name):
        path = os.path.join(self.dir, name)
        self._write_kubeconfig(path, token)
        return path

    def _start_etcd(self):
        etcd = shutil.which("etcd")
        if etcd is None:
            raise RuntimeError("etcd not found: install Debian's etcd-server (scripts/test does)")
        log = open(os.path.join(self.dir, "etcd.log"), "ab")
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self.etcd = subprocess.Popen(
            [etcd, "--name", "podid-test", "--data-dir", os.path.join(self.dir, "etcd"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"podid-test={peer}", "--log-level", "warn"],
            stdout=log, stderr=log)

    def _start_apiserver(self):
        d = self.dir
        log = open(os.path.join(d, "apiserver.log"), "ab")
        args = [
            os.path.join(self.bin, "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}", f"--cert-dir={d}",
            f"--tls-cert-file={d}/apiserver.crt", f"--tls-private-key-file={d}/apiserver.key",
            f"--client-ca-file={d}/ca.crt",
            f"--token-auth-file={d}/tokens.csv",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-signing-key-file={self.signing_key}",
            *[f"--service-account-key-file={k}" for k in self.verify_keys],
            "--service-cluster-ip-range=10.96.0.0/24",
            "--allow-privileged=true",
        ]
        self.apiserver = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.apiserver.poll() is not None:
                raise RuntimeError("kube-apiserver exited:\n" + self.log_tail())
            try:
                if self.raw("/readyz") == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("kube-apiserver did not become ready:\n" + self.log_tail())

    def log_tail(self):
        with open(os.path.join(self.dir, "apiserver.log"), errors="replace") as f:
            return f.read()[-4000:]

    # --- talking to it -------------------------------------------------------------------
    def raw(self, path, token=ADMIN_TOKEN):
        ctx = ssl.create_default_context(cafile=self.ca)
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.read().decode()

    def kubectl(self, *args, input=None, check=True):
        proc = subprocess.run([self.kubectl_bin, "--kubeconfig", self.kubeconfig, *args],
                              input=input, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout

    def apply(self, obj):
        return json.loads(self.kubectl("apply", "-o", "json", "-f", "-", input=json.dumps(obj)))

    def create(self, obj):
        return json.loads(self.kubectl("create", "-o", "json", "-f", "-", input=json.dumps(obj)))

    def get(self, kind, name, namespace="default"):
        return json.loads(self.kubectl("get", kind, name, "-n", namespace, "-o", "json"))

    def create_token(self, namespace, service_account, pod=None, audience="pods.eks.amazonaws.com",
                     duration="1h"):
        """`kubectl create token`, bound to `pod` (its stored object) when given."""
        args = ["create", "token", service_account, "-n", namespace, "--audience", audience,
                "--duration", duration]
        if pod is not None:
            args += ["--bound-object-kind", "Pod", "--bound-object-name", pod["metadata"]["name"],
                     "--bound-object-uid", pod["metadata"]["uid"]]
        return self.kubectl(*args).strip()


def claims_of(token):
    """The unverified claims of a JWT (to look at what the API server wrote)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def pod_manifest(name, service_account, namespace="default", node_name=None, **extra_spec):
    spec = {"serviceAccountName": service_account,
            "containers": [{"name": "app", "image": "registry.invalid/app:1"}], **extra_spec}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}
