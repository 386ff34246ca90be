"""Revoking a role's active sessions, as the IAM console does: an inline deny on
`DateLessThan aws:TokenIssueTime`, written by `podid role revoke-sessions` (or by any IAM client).
Sessions issued before it are refused from then on; sessions issued afterwards work."""
import json
import subprocess
import time
import uuid

import botocore.exceptions
import pytest

from conftest import ACCOUNT, PODID_BIN


def assume(server, role_arn):
    c = server.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="revocable")["Credentials"]
    return server.client("iam", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


def test_revoke_sessions_refuses_older_sessions_only(server):
    iam = server.client("iam")
    name = "revocable-" + uuid.uuid4().hex[:6]
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}))
    old = assume(server, arn)
    assert old.get_role(RoleName=name)["Role"]["Arn"] == arn

    time.sleep(1.1)  # aws:TokenIssueTime has whole seconds: the old session is strictly older
    out = subprocess.run([PODID_BIN, "role", "revoke-sessions", "--role-name", name],
                         env=server.cli_env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"sessions of role {name} issued before" in out.stdout
    doc = iam.get_role_policy(RoleName=name, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    assert doc["Statement"][0]["Effect"] == "Deny"
    assert "aws:TokenIssueTime" in doc["Statement"][0]["Condition"]["DateLessThan"]

    with pytest.raises(botocore.exceptions.ClientError) as refused:
        old.get_role(RoleName=name)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    time.sleep(1.1)
    new = assume(server, arn)
    assert new.get_role(RoleName=name)["Role"]["Arn"] == arn
