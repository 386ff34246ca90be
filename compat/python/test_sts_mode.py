"""`sts` issuing mode end to end, with moto's server as the upstream STS.

moto (PyPI `moto[server]`) runs on a free loopback port; `podid dev --issuer sts --sts-endpoint`
starts the control plane and the node agent with long-term source credentials in its
environment. Pods are `podid exec` (the aws CLI's default chain → agent → podid → moto) or
direct EKS Auth calls with minted tokens. moto's request recorder shows every AssumeRole exactly
as podid sent it (moto itself does not keep session tags).
"""
import base64
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import botocore
import pytest
from botocore.config import Config

from conftest import PODID_BIN, clean_env, free_port
from test_walkthrough import read_dev_env

MOTO_ACCOUNT = "123456789012"
SOURCE_KEY = "AKIAPODIDSOURCE00001"
SIX_TAGS = ["eks-cluster-arn", "eks-cluster-name", "kubernetes-namespace", "kubernetes-service-account",
            "kubernetes-pod-name", "kubernetes-pod-uid"]


def moto_bin():
    found = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    if not os.path.exists(found):
        pytest.skip("moto_server not installed (pip install 'moto[server]')")
    return found


class Moto:
    def __init__(self, tmp):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(tmp, "moto.log"), "wb")
        env = clean_env()
        # The recorder writes to a file (default ./moto_recording): one per server.
        env["MOTO_RECORDER_FILEPATH"] = os.path.join(tmp, "moto-recording")
        self.proc = subprocess.Popen([moto_bin(), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=self.log, env=env)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto did not start")
                time.sleep(0.2)
        self.post("/moto-api/recorder/start-recording")

    def post(self, path):
        urllib.request.urlopen(urllib.request.Request(self.endpoint + path, data=b"", method="POST"), timeout=10).read()

    def reset(self):
        self.post("/moto-api/recorder/reset-recording")
        self.post("/moto-api/recorder/start-recording")

    def assume_role_calls(self, role_arn=None):
        """Every recorded AssumeRole, as its parsed form body plus the signing access key id."""
        raw = urllib.request.urlopen(self.endpoint + "/moto-api/recorder/download-recording", timeout=10).read()
        calls = []
        for line in raw.decode().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode()
            params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
            if params.get("Action") != "AssumeRole":
                continue
            if role_arn and params.get("RoleArn") != role_arn:
                continue
            auth = entry["headers"].get("Authorization", "")
            params["_signed_by"] = auth.split("Credential=", 1)[-1].split("/", 1)[0]
            calls.append(params)
        return calls

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)


class Dev:
    """`podid dev --issuer sts` against `moto`."""

    def __init__(self, tmp, moto, *extra):
        self.data = os.path.join(tmp, "dev")
        os.makedirs(self.data)
        self.port = free_port()
        env = clean_env()
        env.update({"AWS_ACCESS_KEY_ID": SOURCE_KEY, "AWS_SECRET_ACCESS_KEY": "podid-source-secret",
                    "AWS_REGION": "us-east-1"})
        self.log_path = os.path.join(self.data, "dev.log")
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PODID_BIN, "dev", "--data-dir", self.data, "--listen", f"127.0.0.1:{self.port}",
             "--agent-port", str(free_port()), "--issuer", "sts", "--sts-endpoint", moto.endpoint, *extra],
            stdout=log, stderr=log, env=env)
        env_file = os.path.join(self.data, "dev.env")
        deadline = time.time() + 60
        while not os.path.exists(env_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(open(self.log_path).read()[-3000:])
            time.sleep(0.2)
        time.sleep(0.3)
        self.env = clean_env()
        self.env.update(read_dev_env(env_file))
        self.env["AWS_MAX_ATTEMPTS"] = "1"
        self.endpoint = self.env["AWS_ENDPOINT_URL"]
        self.agent = self.env["PODID_AGENT_URL"]

    def client(self, service):
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                            config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                                          max_pool_connections=64))

    def associate(self, service_account, role, **extra):
        return self.client("eks").create_pod_identity_association(
            clusterName="dev", namespace="default", serviceAccount=service_account,
            roleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/{role}", **extra)["association"]

    def token(self, service_account, pod_name="pod", pod_uid=None):
        return subprocess.run(
            [PODID_BIN, "token", "--data-dir", self.data, "--namespace", "default", "--service-account",
             service_account, "--pod-name", pod_name, "--pod-uid", pod_uid or str(uuid.uuid4())],
            capture_output=True, text=True, check=True, env=clean_env()).stdout.strip()

    def exec_aws(self, service_account, *args):
        p = subprocess.run([PODID_BIN, "exec", "--data-dir", self.data, "--namespace", "default",
                            "--service-account", service_account, "--", "aws", *args, "--output", "json"],
                           capture_output=True, text=True, env=clean_env(), timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def from_agent(self, token):
        req = urllib.request.Request(self.agent + "/v1/credentials", headers={"Authorization": token})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def eks_auth(self, token):
        try:
            return self.client("eks-auth").assume_role_for_pod_identity(clusterName="dev", token=token), None
        except botocore.exceptions.ClientError as e:
            return None, e.response

    def metrics(self):
        return urllib.request.urlopen(self.endpoint + "/metrics", timeout=10).read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    m = Moto(str(tmp_path_factory.mktemp("moto")))
    yield m
    m.stop()


@pytest.fixture(scope="module")
def dev(tmp_path_factory, moto):
    d = Dev(str(tmp_path_factory.mktemp("sts")), moto)
    yield d
    d.stop()


def test_startup_learns_the_account_and_names_the_mode(dev):
    log = open(dev.log_path).read()
    assert '"issuer":"sts"' in log
    assert f'"account_id":"{MOTO_ACCOUNT}"' in log
    assert "long-term" in log
    assert "podid-source-secret" not in log


def test_a_pod_gets_the_role_through_the_agent_with_the_six_tags(dev, moto):
    moto.reset()
    dev.associate("app", "app-role")
    me = dev.exec_aws("app", "sts", "get-caller-identity")
    assert me["Account"] == MOTO_ACCOUNT
    assert me["Arn"].startswith(f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/app-role/eks-dev-podid-exec-"), me
    [call] = moto.assume_role_calls(f"arn:aws:iam::{MOTO_ACCOUNT}:role/app-role")
    assert call["_signed_by"] == SOURCE_KEY
    assert call["RoleSessionName"] == me["Arn"].rsplit("/", 1)[1]
    assert call["DurationSeconds"] == "3600"
    tags = {call[f"Tags.member.{i}.Key"]: call[f"Tags.member.{i}.Value"] for i in range(1, 7)}
    assert sorted(tags) == sorted(SIX_TAGS)
    assert tags["eks-cluster-name"] == "dev"
    assert tags["eks-cluster-arn"] == f"arn:aws:eks:us-east-1:{MOTO_ACCOUNT}:cluster/dev"
    assert tags["kubernetes-service-account"] == "app"
    assert tags["kubernetes-pod-name"] == "podid-exec"
    assert sorted(call[f"TransitiveTagKeys.member.{i}"] for i in range(1, 7)) == sorted(SIX_TAGS)
    assert "Tags.member.7.Key" not in call and "Policy" not in call and "ExternalId" not in call


def test_disabled_tags_and_the_session_policy_arrive_as_sent(dev, moto):
    moto.reset()
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}]})
    dev.associate("scoped", "scoped-role", disableSessionTags=True, policy=policy)
    me = dev.exec_aws("scoped", "sts", "get-caller-identity")
    assert ":assumed-role/scoped-role/" in me["Arn"]
    [call] = moto.assume_role_calls(f"arn:aws:iam::{MOTO_ACCOUNT}:role/scoped-role")
    assert json.loads(call["Policy"]) == json.loads(policy)
    assert not any(k.startswith(("Tags.", "TransitiveTagKeys.")) for k in call)


def test_target_role_chaining_signs_with_the_first_session_and_sends_the_external_id(dev, moto):
    moto.reset()
    target = "arn:aws:iam::210987654321:role/data-reader"
    assoc = dev.associate("chained", "hop-role", targetRoleArn=target)
    me = dev.exec_aws("chained", "sts", "get-caller-identity")
    assert me["Arn"].startswith("arn:aws:sts::210987654321:assumed-role/data-reader/eks-dev-podid-exec-"), me
    [first] = moto.assume_role_calls(f"arn:aws:iam::{MOTO_ACCOUNT}:role/hop-role")
    [second] = moto.assume_role_calls(target)
    assert first["_signed_by"] == SOURCE_KEY and "ExternalId" not in first
    assert second["_signed_by"] not in (SOURCE_KEY, "")
    assert second["ExternalId"] == assoc["externalId"]
    assert int(second["DurationSeconds"]) <= 3600
    # The six tags go on the first hop, as transitive: they carry over without being re-sent.
    assert first["Tags.member.1.Key"] and "Tags.member.1.Key" not in second


def test_the_audit_trail_records_the_upstream_request_id(dev):
    events = dev.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}])["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    upstream = [r for r in records if r["eventSource"] == "sts.amazonaws.com"
                and r.get("userIdentity", {}).get("invokedBy") == "pods.eks.amazonaws.com"]
    assert upstream, records[:2]
    # moto's request ids are 52 alphanumerics; podid's own are UUIDs.
    assert all(len(r["requestID"]) == 52 and r["requestID"].isalnum() for r in upstream), \
        [r["requestID"] for r in upstream]


def burst(dev, service_account, pods=200, asks_per_pod=2):
    tokens = [dev.token(service_account, f"burst-{i}") for i in range(pods)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(dev.eks_auth, tokens * asks_per_pod))
    errors = [e for _, e in results if e is not None]
    assert not errors, errors[:3]
    return [r["credentials"]["accessKeyId"] for r, _ in results]


def test_a_burst_of_200_pods_makes_at_most_one_call_per_pod(dev, moto):
    moto.reset()
    dev.associate("burst", "burst-role")
    keys = burst(dev, "burst")
    calls = moto.assume_role_calls(f"arn:aws:iam::{MOTO_ACCOUNT}:role/burst-role")
    assert len(calls) <= 200, len(calls)
    assert len(set(keys)) == len(calls)


def test_with_session_sharing_a_burst_makes_one_call_per_association(dev, moto):
    moto.reset()
    dev.associate("shared", "shared-role", disableSessionTags=True,
                  tags={"podid.dev/session-sharing": "true"})
    keys = burst(dev, "shared")
    calls = moto.assume_role_calls(f"arn:aws:iam::{MOTO_ACCOUNT}:role/shared-role")
    assert len(calls) == 1, len(calls)
    assert len(set(keys)) == 1
    # Named for the service account, not for one of the pods sharing it.
    assert calls[0]["RoleSessionName"].startswith("eks-dev-shared-")
    metrics = dev.metrics()
    assert 'podid_sts_sessions_total{outcome="reused"}' in metrics


def test_upstream_down_is_service_unavailable_while_cached_pods_keep_working(tmp_path):
    moto = Moto(str(tmp_path))
    dev = Dev(str(tmp_path), moto)
    try:
        dev.associate("app", "app-role")
        token = dev.token("app", "warm")
        status, warm = dev.from_agent(token)
        assert status == 200, warm
        moto.stop()
        status, again = dev.from_agent(token)
        assert status == 200 and again["AccessKeyId"] == warm["AccessKeyId"], again
        _, error = dev.eks_auth(dev.token("app", "cold"))
        assert error["Error"]["Code"] == "ServiceUnavailableException", error
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
        status, body = dev.from_agent(dev.token("app", "cold-through-agent"))
        assert status == 503 and "ServiceUnavailableException" in body, (status, body)
        assert 'podid_sts_upstream_calls_total{result="unavailable"}' in dev.metrics()
    finally:
        dev.stop()
        moto.stop()


def test_the_token_bucket_throttles_beyond_its_queue(tmp_path):
    moto = Moto(str(tmp_path))
    dev = Dev(str(tmp_path), moto, "--sts-rate-limit", "1", "--sts-burst", "2", "--sts-max-queue-wait", "0s")
    try:
        dev.associate("app", "app-role")
        tokens = [dev.token("app", f"p{i}") for i in range(6)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(dev.eks_auth, tokens))
        ok = [r for r, _ in results if r]
        throttled = [e for _, e in results if e]
        assert len(ok) >= 2 and throttled, results
        for e in throttled:
            assert e["Error"]["Code"] == "ThrottlingException"
            assert e["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert len(moto.assume_role_calls(f"arn:aws:iam::{MOTO_ACCOUNT}:role/app-role")) == len(ok)
        metrics = dev.metrics()
        assert f"podid_sts_bucket_throttled_total {len(throttled)}" in metrics
    finally:
        dev.stop()
        moto.stop()
