"""The user guide's walkthrough, end to end with the real aws CLI against `podid dev`.

Differences from the guide, on purpose: the trust policy also allows `sts:TagSession` (EKS
requires it unless the association disables session tags; the guide's version is refused by EKS
and by podid alike), and the node's EKS Auth call is made by hand, as the node agent would.
"""
import datetime
import json
import os
import re
import shlex
import sys
import subprocess
import time
import urllib.request

import pytest

from conftest import ACCOUNT, PODID_BIN, clean_env, free_port

TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                   "Action": ["sts:AssumeRole", "sts:TagSession"]}],
})


def read_dev_env(path):
    env = {}
    for line in open(path):
        m = re.match(r"export (\w+)=(.*)$", line.strip())
        if m:
            env[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
    return env


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    data = tmp_path_factory.mktemp("dev")
    port = free_port()
    log = open(data / "dev.log", "wb")
    proc = subprocess.Popen([PODID_BIN, "dev", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}"],
                            stdout=log, stderr=log, env=clean_env())
    env_file = data / "dev.env"
    deadline = time.time() + 60
    while time.time() < deadline and not env_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(open(data / "dev.log").read())
        time.sleep(0.2)
    time.sleep(0.5)
    values = read_dev_env(env_file)
    env = clean_env()
    env.update(values)
    env["AWS_MAX_ATTEMPTS"] = "1"
    yield {"env": env, "data": str(data), "port": port}
    proc.terminate()
    proc.wait(timeout=30)


def aws(dev, *args, env=None, check=True):
    p = subprocess.run(["aws", *args, "--output", "json"], capture_output=True, text=True, env=env or dev["env"], timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else None, p


def test_dev_env_has_everything_the_clients_need(dev):
    for name in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION", "PODID_CLUSTER"]:
        assert dev["env"].get(name), name
    assert oct(os.stat(os.path.join(dev["data"], "dev.env")).st_mode & 0o777) == "0o600"
    out, _ = aws(dev, "eks", "describe-cluster", "--name", "dev")
    assert out["cluster"]["status"] == "ACTIVE"


def test_user_guide_walkthrough(dev):
    role, _ = aws(dev, "iam", "create-role", "--role-name", "my-app-role", "--assume-role-policy-document", TRUST)
    assert role["Role"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/my-app-role"
    aws(dev, "iam", "attach-role-policy", "--role-name", "my-app-role",
        "--policy-arn", "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    assoc, _ = aws(dev, "eks", "create-pod-identity-association", "--cluster-name", "dev", "--namespace", "default",
                   "--service-account", "my-app", "--role-arn", role["Role"]["Arn"])
    aid = assoc["association"]["associationId"]
    listed, _ = aws(dev, "eks", "list-pod-identity-associations", "--cluster-name", "dev")
    assert aid in [a["associationId"] for a in listed["associations"]]
    described, _ = aws(dev, "eks", "describe-pod-identity-association", "--cluster-name", "dev", "--association-id", aid)
    assert described["association"]["serviceAccount"] == "my-app"

    # The node: a user allowed only eks-auth:AssumeRoleForPodIdentity.
    aws(dev, "iam", "create-user", "--user-name", "node")
    aws(dev, "iam", "put-user-policy", "--user-name", "node", "--policy-name", "node", "--policy-document", json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}]}))
    key, _ = aws(dev, "iam", "create-access-key", "--user-name", "node")
    node_env = dict(dev["env"], AWS_ACCESS_KEY_ID=key["AccessKey"]["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["AccessKey"]["SecretAccessKey"])

    token = subprocess.run([PODID_BIN, "token", "--data-dir", dev["data"], "--namespace", "default", "--service-account", "my-app",
                            "--pod-name", "my-app-5b6c"], capture_output=True, text=True, check=True, env=clean_env()).stdout.strip()
    assert token.count(".") == 2
    out, _ = aws(dev, "eks-auth", "assume-role-for-pod-identity", "--cluster-name", "dev", "--token", token, env=node_env)
    creds = out["credentials"]
    # EKS's lifetime rule: six hours although the role has IAM's default MaxSessionDuration (1 h).
    # The CLI prints this timestamp as epoch seconds or ISO 8601, depending on its version.
    raw = str(creds["expiration"])
    expires = float(raw) if raw.replace(".", "", 1).isdigit() else \
        datetime.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    lifetime = expires - time.time()
    assert 6 * 3600 - 120 < lifetime <= 6 * 3600, creds["expiration"]
    pod_env = dict(dev["env"], AWS_ACCESS_KEY_ID=creds["accessKeyId"], AWS_SECRET_ACCESS_KEY=creds["secretAccessKey"],
                   AWS_SESSION_TOKEN=creds["sessionToken"])
    me, _ = aws(dev, "sts", "get-caller-identity", env=pod_env)
    assert me["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/my-app-role/eks-dev-my-app-5b6-"), "pod name cut to 10 characters"
    assert me["UserId"].startswith("AROA")

    allowed, _ = aws(dev, "iam", "simulate-principal-policy", "--policy-source-arn", role["Role"]["Arn"],
                     "--action-names", "s3:GetObject", "--resource-arns", "arn:aws:s3:::my-bucket/*")
    assert allowed["EvaluationResults"][0]["EvalDecision"] == "allowed"
    denied, _ = aws(dev, "iam", "simulate-principal-policy", "--policy-source-arn", role["Role"]["Arn"],
                    "--action-names", "s3:PutObject", "--resource-arns", "arn:aws:s3:::my-bucket/*")
    assert denied["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"

    deadline = time.time() + 5
    while True:
        events, _ = aws(dev, "cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=AssumeRole")
        found = [json.loads(e["CloudTrailEvent"]) for e in events["Events"]]
        mine = [r for r in found if r["requestParameters"].get("roleArn") == role["Role"]["Arn"]]
        if mine or time.time() > deadline:
            break
        time.sleep(0.2)
    assert mine and mine[0]["userIdentity"]["invokedBy"] == "pods.eks.amazonaws.com"

    aws(dev, "eks", "update-pod-identity-association", "--cluster-name", "dev", "--association-id", aid,
        "--role-arn", role["Role"]["Arn"])
    aws(dev, "eks", "delete-pod-identity-association", "--cluster-name", "dev", "--association-id", aid)


BOTO3_PROGRAM = """
import boto3, sys
session = boto3.Session()
creds = session.get_credentials()
assert creds.method == "container-role", creds.method
print(boto3.client("sts").get_caller_identity()["Arn"])
"""


def exec_as_pod(dev, sa, *cmd):
    env = dict(clean_env(), PODID_DATA_DIR=dev["data"], PATH=os.environ["PATH"])
    # A developer's static keys must not leak into the "pod".
    env.update(AWS_ACCESS_KEY_ID="AKIALEAKED0000000000", AWS_SECRET_ACCESS_KEY="leaked", AWS_PROFILE="leaked")
    return subprocess.run([PODID_BIN, "exec", "--data-dir", dev["data"], "--namespace", "default",
                           "--service-account", sa, "--pod-name", "exec-pod", "--", *cmd],
                          capture_output=True, text=True, env=env, timeout=120)


def test_python_sdks_under_podid_exec(dev):
    aws(dev, "iam", "create-role", "--role-name", "exec-role", "--assume-role-policy-document", TRUST)
    aws(dev, "eks", "create-pod-identity-association", "--cluster-name", "dev", "--namespace", "default",
        "--service-account", "exec-sa", "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/exec-role")
    want = f"arn:aws:sts::{ACCOUNT}:assumed-role/exec-role/eks-dev-exec-pod-"

    cli = exec_as_pod(dev, "exec-sa", "aws", "sts", "get-caller-identity", "--output", "json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["Arn"].startswith(want)

    py = exec_as_pod(dev, "exec-sa", sys.executable, "-c", BOTO3_PROGRAM)
    assert py.returncode == 0, py.stderr
    assert py.stdout.strip().startswith(want)

    # A service account without an association gets the agent's 404 pass-through, and a failing exit code.
    denied = exec_as_pod(dev, "no-such-sa", "aws", "sts", "get-caller-identity")
    assert denied.returncode != 0
