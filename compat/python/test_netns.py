"""The node agent on its real link-local addresses, reached by an SDK from another network namespace.

Topology (all of it made here, in namespaces of our own; nothing leaves them):

    node ns: pod-id-link0 (169.254.170.23/32, fd00:ec2::23/128, by `podid-agent initialize`)
             veth-n 192.0.2.1/24 2001:db8::1/64    <- `podid server` on 192.0.2.1:8080,
                                                       `podid-agent` on both link-local :80
    pod ns:  veth-p 192.0.2.2/24 2001:db8::2/64, routes to the two link-local addresses via the node

The agent is the standalone `podid-agent` binary when it has been built (PODID_AGENT_BIN, else
target/debug/podid-agent), otherwise `podid agent`, which is the same agent.

The pod runs the real aws CLI with only the container-credential variables EKS Pod Identity
injects, so the SDK's own container provider fetches credentials from the agent over the
link-local address, and the agent gets them from the server with the node's IAM user keys.

Root is needed to make namespaces: the tests skip, saying why, where the kernel or the user may
not. The file doubles as the helper run inside a namespace (`python test_netns.py setup ...`),
since the test process itself stays in the initial namespace.
"""
import configparser
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import jwt_tools as jt  # noqa: E402
from conftest import ACCOUNT, AGENT_COMMAND, PODID_BIN, REGION, clean_env  # noqa: E402

SERVER_PORT = 8080
PROBE_PORT = 2703
METRICS_PORT = 2705
NODE_V4, POD_V4 = "192.0.2.1", "192.0.2.2"
NODE_V6, POD_V6 = "2001:db8::1", "2001:db8::2"
AGENT_V4, AGENT_V6 = "169.254.170.23", "fd00:ec2::23"
ROLE = "netns-role"
SERVICE_ACCOUNT = ("default", "my-app")

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                   "Action": ["sts:AssumeRole", "sts:TagSession"]}],
}
NODE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}],
}


# --- running things -------------------------------------------------------------------------------

def run(*args, check=True, env=None, timeout=30):
    p = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p


def in_ns(ns, *args, **kw):
    return run("ip", "netns", "exec", ns, *args, **kw)


def helper(ns, command, payload, timeout=30):
    """Runs this file's helper `command` inside `ns`; returns its JSON answer."""
    env = clean_env()
    env["PODID_NETNS_PAYLOAD"] = json.dumps(payload)
    p = in_ns(ns, sys.executable, os.path.abspath(__file__), command, env=env, timeout=timeout)
    return json.loads(p.stdout)


def why_netns_unavailable():
    """None when network namespaces can be made here, else the reason."""
    if os.geteuid() != 0:
        return "not root: creating network namespaces needs CAP_SYS_ADMIN and CAP_NET_ADMIN"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    name = f"podid-probe-{uuid.uuid4().hex[:8]}"
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if p.returncode != 0:
        return f"the kernel refused `ip netns add`: {p.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@pytest.fixture(scope="module")
def netns_ok():
    reason = why_netns_unavailable()
    if reason:
        print(f"SKIPPED test_netns: {reason}")
        pytest.skip(reason)


# --- the topology ---------------------------------------------------------------------------------

class Topology:
    """A node and a pod namespace joined by a veth pair. Call close() in a finally even when
    build() failed half-way: it undoes whatever was made."""

    def __init__(self, workdir, ipv6_disabled_on_node=False):
        tag = uuid.uuid4().hex[:8]
        self.node, self.pod = f"podid-node-{tag}", f"podid-pod-{tag}"
        self.workdir = workdir
        self.ipv6_disabled_on_node = ipv6_disabled_on_node
        self.procs = []
        self.namespaces = []

    def build(self):
        ipv6_disabled_on_node = self.ipv6_disabled_on_node
        for ns in (self.node, self.pod):
            run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        if ipv6_disabled_on_node:
            # Before any link exists in the node, so every link there inherits it.
            for scope in ("all", "default"):
                in_ns(self.node, "sysctl", "-qw", f"net.ipv6.conf.{scope}.disable_ipv6=1")
        run("ip", "-n", self.node, "link", "add", "veth-n", "type", "veth", "peer", "name", "veth-p",
            "netns", self.pod)
        run("ip", "-n", self.node, "addr", "add", f"{NODE_V4}/24", "dev", "veth-n")
        run("ip", "-n", self.pod, "addr", "add", f"{POD_V4}/24", "dev", "veth-p")
        if not ipv6_disabled_on_node:
            run("ip", "-n", self.node, "-6", "addr", "add", f"{NODE_V6}/64", "dev", "veth-n", "nodad")
        run("ip", "-n", self.pod, "-6", "addr", "add", f"{POD_V6}/64", "dev", "veth-p", "nodad")
        run("ip", "-n", self.node, "link", "set", "veth-n", "up")
        run("ip", "-n", self.pod, "link", "set", "veth-p", "up")
        run("ip", "-n", self.pod, "route", "add", f"{AGENT_V4}/32", "via", NODE_V4)
        run("ip", "-n", self.pod, "-6", "route", "add", f"{AGENT_V6}/128", "via", NODE_V6)
        return self

    def spawn(self, name, args, env):
        log_path = os.path.join(self.workdir, f"{name}.log")
        log = open(log_path, "ab")
        proc = subprocess.Popen(["ip", "netns", "exec", self.node, *args], stdout=log, stderr=log, env=env)
        proc.log_path = log_path
        self.procs.append(proc)
        return proc

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def log_tail(proc):
    with open(proc.log_path, errors="replace") as f:
        return f.read()[-3000:]


class Stack:
    """Server, cluster, role, association, node user and agent, all in the node namespace."""

    def __init__(self, topo):
        self.topo = topo
        self.endpoint = f"http://{NODE_V4}:{SERVER_PORT}"
        self.cluster = f"netns-{uuid.uuid4().hex[:6]}"

    def start_server(self):
        data = os.path.join(self.topo.workdir, "server")
        os.makedirs(data, exist_ok=True)
        self.server = self.topo.spawn("server", [
            PODID_BIN, "server", "--listen", f"{NODE_V4}:{SERVER_PORT}", "--data-dir", data,
            "--log-format", "json"], clean_env())
        answer = helper(self.topo.node, "wait", {"url": self.endpoint + "/healthz", "seconds": 30})
        assert answer["status"] == 200, log_tail(self.server)
        cfg = configparser.ConfigParser()
        cfg.read(os.path.join(data, "admin-credentials"))
        self.admin_key = (cfg["default"]["aws_access_key_id"], cfg["default"]["aws_secret_access_key"])

    def set_up_identities(self):
        self.key = signing_key()
        issuer = f"https://oidc.example/{self.cluster}"
        out = helper(self.topo.node, "setup", {
            "endpoint": self.endpoint, "admin": self.admin_key, "cluster": self.cluster,
            "issuer": issuer, "jwks": self.key.jwks()})
        self.role_arn, self.node_key = out["role_arn"], out["node_key"]
        self.pod_uid = str(uuid.uuid4())
        token = jt.sign_rs256(self.key, jt.claims(issuer, *SERVICE_ACCOUNT, pod="my-app-5b6c9",
                                                  pod_uid=self.pod_uid))
        self.token_file = os.path.join(self.topo.workdir, "eks-pod-identity-token")
        with open(self.token_file, "w") as f:
            f.write(token)  # no trailing newline, as the kubelet writes it

    def start_agent(self, bind_hosts=(AGENT_V4, f"[{AGENT_V6}]")):
        env = clean_env()
        env.update({"AWS_ACCESS_KEY_ID": self.node_key[0], "AWS_SECRET_ACCESS_KEY": self.node_key[1],
                    "AWS_REGION": REGION})
        binds = [arg for host in bind_hosts for arg in ("-b", host)]
        self.agent = self.topo.spawn("agent", [
            *AGENT_COMMAND, "--cluster-name", self.cluster, "--endpoint", self.endpoint, *binds,
            "-p", "80", "--probe-port", str(PROBE_PORT), "--metrics-port", str(METRICS_PORT),
            "--state-dir", os.path.join(self.topo.workdir, "agent-state"), "--log-format", "json"], env)
        return self.probe()

    def probe(self):
        """The agent's readiness report, once it answers at all."""
        answer = helper(self.topo.node, "wait", {"url": f"http://127.0.0.1:{PROBE_PORT}/readyz",
                                                 "seconds": 20, "any_status": True})
        assert answer["status"] is not None, "agent probe never answered: " + log_tail(self.agent)
        return answer

    def pod_whoami(self, agent_host):
        """`aws sts get-caller-identity` in the pod namespace with only the variables EKS Pod
        Identity injects (the aws CLI v1 reads AWS_DEFAULT_REGION, SDKs AWS_REGION)."""
        empty = os.path.join(self.topo.workdir, "empty-aws-config")
        open(empty, "a").close()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.topo.workdir,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://{agent_host}/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": self.token_file,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_STS": self.endpoint,
            "AWS_CONFIG_FILE": empty,
            "AWS_SHARED_CREDENTIALS_FILE": empty,
            "AWS_MAX_ATTEMPTS": "1",
        }
        p = run("ip", "netns", "exec", self.topo.pod, shutil.which("aws") or "aws",
                "sts", "get-caller-identity", "--output", "json", env=env, check=False, timeout=60)
        assert p.returncode == 0, f"aws via {agent_host}: {p.stderr}\nagent log:\n{log_tail(self.agent)}"
        return json.loads(p.stdout)


_KEY = []


def signing_key():
    """One cluster signing key for the module: pure-Python RSA generation takes seconds."""
    if not _KEY:
        _KEY.append(jt.Key())
    return _KEY[0]


def initialize(topo):
    p = in_ns(topo.node, *AGENT_COMMAND, "initialize", "--output", "json", env=clean_env())
    report = json.loads(p.stdout)
    kind = json.loads(run("ip", "-n", topo.node, "-j", "-d", "link", "show", "dev", "pod-id-link0").stdout)
    report["kernel_link_kind"] = kind[0]["linkinfo"]["info_kind"]
    if "linkKind" in report:
        assert report["linkKind"] == report["kernel_link_kind"], report
    print(f"initialize: {report}")
    return report


def assert_assumed_role(me, stack):
    # EKS's session name: cluster and pod names each cut to 10 characters, then a UUID.
    prefix = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/eks-{stack.cluster[:10]}-my-app-5b6-"
    assert me["Arn"].startswith(prefix), me
    uuid.UUID(me["Arn"][len(prefix):])
    assert me["Account"] == ACCOUNT
    assert me["UserId"].startswith("AROA"), me


# --- the tests ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dual_stack(netns_ok, tmp_path_factory):
    topo = Topology(str(tmp_path_factory.mktemp("netns-dual")))
    try:
        topo.build()
        report = initialize(topo)
        stack = Stack(topo)
        stack.start_server()
        stack.set_up_identities()
        stack.init_report = report
        stack.ready = stack.start_agent()
        yield stack
    finally:
        topo.close()


def test_initialize_sets_up_both_link_local_addresses(dual_stack):
    report = dual_stack.init_report
    assert report["linkCreated"] is True
    assert report["kernel_link_kind"] in ("dummy", "bridge")
    assert report["ipv4"]["configured"] is True
    assert report["ipv6"]["configured"] is True, report
    again = initialize(dual_stack.topo)
    assert again["linkCreated"] is False
    assert again["ipv4"] == {**report["ipv4"], "addressAdded": False, "routeAdded": False}


def test_agent_listens_on_both_link_local_addresses(dual_stack):
    ready = dual_stack.ready
    assert ready["status"] == 200, ready
    bound = {listener["address"] for listener in ready["body"]["bound"]}
    assert bound == {f"{AGENT_V4}:80", f"[{AGENT_V6}]:80"}, ready
    assert ready["body"]["failed"] == [], ready


def test_sdk_in_the_pod_gets_credentials_over_ipv4(dual_stack):
    assert_assumed_role(dual_stack.pod_whoami(AGENT_V4), dual_stack)


def test_sdk_in_the_pod_gets_credentials_over_ipv6(dual_stack):
    assert_assumed_role(dual_stack.pod_whoami(f"[{AGENT_V6}]"), dual_stack)


def test_nothing_else_on_the_node_answers_port_80(dual_stack):
    # The node's veth address is reachable from the pod (the STS calls above went there), but
    # the agent listens only on its link-local addresses: the pod's routes to them are what work.
    answer = helper(dual_stack.topo.pod, "get", {"url": f"http://{NODE_V4}/v1/credentials"})
    assert answer["error"] and "refused" in answer["error"].lower(), answer


def test_agent_survives_ipv6_disabled_on_the_node(netns_ok, tmp_path):
    topo = Topology(str(tmp_path), ipv6_disabled_on_node=True)
    try:
        topo.build()
        flag = in_ns(topo.node, "sysctl", "-n", "net.ipv6.conf.all.disable_ipv6").stdout.strip()
        assert flag == "1"
        report = initialize(topo)
        assert report["ipv4"]["configured"] is True
        assert report["ipv6"]["configured"] is False, report
        stack = Stack(topo)
        stack.start_server()
        stack.set_up_identities()
        ready = stack.start_agent()  # both default bind hosts
        assert stack.agent.poll() is None, log_tail(stack.agent)
        assert ready["status"] == 200, ready
        assert [b["address"] for b in ready["body"]["bound"]] == [f"{AGENT_V4}:80"], ready
        assert [f["address"] for f in ready["body"]["failed"]] == [f"[{AGENT_V6}]:80"], ready
        assert_assumed_role(stack.pod_whoami(AGENT_V4), stack)
        assert stack.agent.poll() is None, "the agent exited after serving"
    finally:
        topo.close()


# --- the helper, run inside a namespace -----------------------------------------------------------

def _http_get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return {"status": r.status, "body": _json_or_text(r.read()), "error": None}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": _json_or_text(e.read()), "error": None}
    except OSError as e:
        return {"status": None, "body": None, "error": str(getattr(e, "reason", e))}


def _json_or_text(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _helper_wait(p):
    deadline = time.time() + p["seconds"]
    while True:
        answer = _http_get(p["url"])
        if answer["status"] == 200 or (p.get("any_status") and answer["status"] is not None):
            return answer
        if time.time() > deadline:
            return answer
        time.sleep(0.1)


def _helper_setup(p):
    import boto3
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    from botocore.config import Config

    access, secret = p["admin"]
    body = json.dumps({"name": p["cluster"], "issuer": p["issuer"], "jwks": p["jwks"]}).encode()
    req = botocore.awsrequest.AWSRequest(method="POST", url=p["endpoint"] + "/podid/v1/clusters", data=body,
                                         headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(access, secret), "podid", REGION).add_auth(req)
    prepared = req.prepare()
    with urllib.request.urlopen(urllib.request.Request(prepared.url, data=body, method="POST",
                                                       headers=dict(prepared.headers.items())), timeout=10) as r:
        assert r.status == 200

    def client(service):
        return boto3.client(service, endpoint_url=p["endpoint"], region_name=REGION, aws_access_key_id=access,
                            aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))

    iam, eks = client("iam"), client("eks")
    role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    eks.create_pod_identity_association(clusterName=p["cluster"], namespace=SERVICE_ACCOUNT[0],
                                        serviceAccount=SERVICE_ACCOUNT[1], roleArn=role)
    iam.create_user(UserName="node")
    iam.put_user_policy(UserName="node", PolicyName="node", PolicyDocument=json.dumps(NODE_POLICY))
    key = iam.create_access_key(UserName="node")["AccessKey"]
    return {"role_arn": role, "node_key": [key["AccessKeyId"], key["SecretAccessKey"]]}


if __name__ == "__main__":
    payload = json.loads(os.environ["PODID_NETNS_PAYLOAD"])
    commands = {"wait": _helper_wait, "get": lambda p: _http_get(p["url"]), "setup": _helper_setup}
    print(json.dumps(commands[sys.argv[1]](payload)))
