"""Fixtures of the attack suite: the compat/python harness (imported under another module name,
so pytest neither collects nor shadows it), plus the node agent, the webhook and the servers
with non-default flags the attacks need."""
import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_SUITE = os.path.join(HERE, "..", "python")
if PYTHON_SUITE not in sys.path:
    sys.path.append(PYTHON_SUITE)  # jwt_tools; appended so this directory's modules win

_spec = importlib.util.spec_from_file_location("podid_compat", os.path.join(PYTHON_SUITE, "conftest.py"))
podid_compat = importlib.util.module_from_spec(_spec)
sys.modules["podid_compat"] = podid_compat
_spec.loader.exec_module(podid_compat)

# Everything compat/python's conftest exports, fixtures included: pytest finds the fixtures here,
# and in a run of both suites, where `conftest` may name this module, compat/python's
# `from conftest import ...` still finds its names.
from podid_compat import *  # noqa: E402,F401,F403
from podid_compat import (  # noqa: E402,F401
    ACCOUNT, AGENT_COMMAND, PODID_BIN, REGION, Server, clean_env, cluster, free_port, fresh_server, server,
)

import helpers  # noqa: E402


@pytest.fixture(scope="session")
def world(server):
    """A cluster whose signing key the suite owns, a node user, a role and one association."""
    w = helpers.World(server, "sec")
    w.ok_role = w.role("sec-pod-role")
    w.associate("default", "app", w.ok_role)
    return w


class Agent:
    def __init__(self, proc, port, log_path):
        self.proc, self.port, self.log_path = proc, port, log_path

    def log(self):
        return open(self.log_path).read()[-3000:]


@pytest.fixture(scope="session")
def agent(world, tmp_path_factory):
    """`podid-agent` on 127.0.0.1:<free port> against the session's server, with the node's key."""
    d = tmp_path_factory.mktemp("agent")
    port = free_port()
    env = clean_env()
    env.update({"AWS_ACCESS_KEY_ID": world.node_key[0], "AWS_SECRET_ACCESS_KEY": world.node_key[1],
                "AWS_REGION": REGION})
    log_path = str(d / "agent.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([
        *AGENT_COMMAND, "--cluster-name", world.cluster, "--endpoint", world.server.endpoint,
        "--bind-hosts", "127.0.0.1", "--port", str(port), "--probe-port", str(free_port()),
        "--metrics-address", "127.0.0.1", "--metrics-port", str(free_port()),
        "--state-dir", str(d / "state"), "--log-format", "json", "-v", "debug"],
        stdout=log, stderr=log, env=env)
    a = Agent(proc, port, log_path)
    deadline = time.time() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError("podid-agent exited: " + a.log())
        try:
            status, _, _ = helpers.raw_http("127.0.0.1", port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            b"Connection: close\r\n\r\n")
            if status == 404:
                break
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError("podid-agent did not start: " + a.log())
        time.sleep(0.1)
    yield a
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def lenient_server(tmp_path_factory):
    """A server allowing http jwksUris and 127.0.0.1/32 only: the redirect fence is what is left."""
    srv = Server(str(tmp_path_factory.mktemp("lenient")),
                 ["--jwks-allow-http", "--jwks-allow-network", "127.0.0.1/32"]).start()
    yield srv
    srv.stop()


class Webhook:
    def __init__(self, proc, port, ca, log_path):
        self.proc, self.port, self.ca, self.log_path = proc, port, ca, log_path

    def log(self):
        return open(self.log_path).read()[-3000:]


@pytest.fixture(scope="session")
def webhook(server, tmp_path_factory):
    """`podid webhook` over TLS (openssl self-signed for 127.0.0.1), without a Kubernetes API
    server, listing cluster `sec-wh`'s associations with a user allowed only that."""
    d = tmp_path_factory.mktemp("webhook")
    cluster = "sec-wh"
    server.register_cluster(cluster)
    iam, eks = server.client("iam"), server.client("eks")
    role = iam.create_role(RoleName="sec-wh-role", AssumeRolePolicyDocument=json.dumps(helpers.TRUST))["Role"]["Arn"]
    eks.create_pod_identity_association(clusterName=cluster, namespace="default", serviceAccount="app", roleArn=role)
    iam.create_user(UserName="sec-webhook")
    iam.put_user_policy(UserName="sec-webhook", PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "eks:ListPodIdentityAssociations",
                                                "Resource": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}"}]}))
    k = iam.create_access_key(UserName="sec-webhook")["AccessKey"]
    creds = d / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {k['AccessKeyId']}\n"
                     f"aws_secret_access_key = {k['SecretAccessKey']}\n")
    cert, key = d / "tls.crt", d / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    port = free_port()
    log_path = str(d / "webhook.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen([
        PODID_BIN, "webhook", "--cluster-name", cluster, "--endpoint", server.endpoint,
        "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--listen", f"127.0.0.1:{port}",
        "--no-metrics", "--no-service-account-watch", "--credentials-file", str(creds),
        "--sync-interval", "1s", "--log-format", "json"], stdout=log, stderr=log, env=clean_env())
    wh = Webhook(proc, port, str(cert), log_path)
    deadline = time.time() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError("podid webhook exited: " + wh.log())
        try:
            if helpers.https(wh, "GET", "/readyz")[0] == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            raise RuntimeError("podid webhook never became ready: " + wh.log())
        time.sleep(0.2)
    yield wh
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
