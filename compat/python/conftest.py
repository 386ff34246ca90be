"""Fixtures: a real `podid server` on a free loopback port, driven with boto3 and the aws CLI.

Every test session builds nothing: scripts/test builds the binary first and passes its path in
PODID_BIN. Each server gets its own data directory; the admin key is read from the file the
server writes there, exactly as a user would.
"""
import configparser
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import boto3
import botocore
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.config import Config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PODID_BIN = os.environ.get("PODID_BIN", os.path.join(ROOT, "target", "debug", "podid"))
# The standalone node agent (`podid-agent`), when built; else `podid agent`, the same agent.
PODID_AGENT_BIN = os.environ.get("PODID_AGENT_BIN", os.path.join(ROOT, "target", "debug", "podid-agent"))
AGENT_COMMAND = [PODID_AGENT_BIN] if os.path.exists(PODID_AGENT_BIN) else [PODID_BIN, "agent"]
REGION = "us-east-1"
ACCOUNT = "000000000000"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `podid server` process and everything needed to talk to it."""

    def __init__(self, data_dir, extra_args=()):
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(data_dir, "server.log")

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PODID_BIN, "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             "--log-format", "json", *self.extra_args],
            stdout=log, stderr=log, env=clean_env(),
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"podid server exited: {open(self.log_path).read()[-3000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("podid server did not become healthy")
        cfg = configparser.ConfigParser()
        cfg.read(os.path.join(self.data_dir, "admin-credentials"))
        self.access_key = cfg["default"]["aws_access_key_id"]
        self.secret_key = cfg["default"]["aws_secret_access_key"]
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self):
        self.stop(signal.SIGKILL)

    # --- clients -------------------------------------------------------------------------
    def client(self, service, access_key=None, secret_key=None, session_token=None, **kw):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            aws_session_token=session_token,
            config=kw.pop("config", None) or Config(retries={"max_attempts": 1, "mode": "standard"}),
            **kw,
        )

    def cli_env(self, **extra):
        env = clean_env()
        env.update({
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_MAX_ATTEMPTS": "1",
        })
        env.update(extra)
        return env

    def aws(self, *args, check=True, env=None):
        """Runs the real aws CLI; returns (exit code, parsed JSON or None, stderr)."""
        proc = subprocess.run(
            ["aws", *args, "--output", "json"], capture_output=True, text=True,
            env=env or self.cli_env(), timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {proc.stderr}")
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        return proc.returncode, out, proc.stderr

    def admin(self, method, path, body=None):
        """A SigV4-signed call to podid's admin API (service name `podid`)."""
        data = json.dumps(body).encode() if body is not None else b""
        req = botocore.awsrequest.AWSRequest(method=method, url=self.endpoint + path, data=data,
                                             headers={"Content-Type": "application/json"})
        creds = botocore.credentials.Credentials(self.access_key, self.secret_key)
        botocore.auth.SigV4Auth(creds, "podid", REGION).add_auth(req)
        prepared = req.prepare()
        http_req = urllib.request.Request(prepared.url, data=data or None, method=method,
                                          headers=dict(prepared.headers.items()))
        try:
            with urllib.request.urlopen(http_req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def register_cluster(self, name, issuer="https://issuer.example/" , jwks=None):
        status, body = self.admin("POST", "/podid/v1/clusters",
                                  {"name": name, "issuer": issuer, "jwks": jwks or {"keys": []}})
        assert status == 200, body
        return body["cluster"]


def clean_env():
    """The environment without any AWS settings of the developer's or CI's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    empty = os.path.join(tempfile.gettempdir(), "podid-compat-empty")
    open(empty, "a").close()
    env["AWS_CONFIG_FILE"] = empty
    env["AWS_SHARED_CREDENTIALS_FILE"] = empty
    return env


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A server shared by the tests of a session (they use distinct cluster names)."""
    srv = Server(str(tmp_path_factory.mktemp("podid"))).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own, for tests that restart or kill it."""
    srv = Server(str(tmp_path / "data")).start()
    yield srv
    srv.stop()


@pytest.fixture
def cluster(server, request):
    """A cluster registered for this test only."""
    import uuid
    base = request.node.originalname.replace("_", "-")[:40].strip("-").lower()
    name = "c-" + "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in base) + "-" + uuid.uuid4().hex[:6]
    server.register_cluster(name)
    return name


def role_arn(name="my-role"):
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"
