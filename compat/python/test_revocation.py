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


def make_role(iam, name, actions):
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    return arn


def delete_role(iam, name):
    iam.delete_role_policy(RoleName=name, PolicyName="p")
    iam.delete_role(RoleName=name)


def assert_denied(call):
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        call()
    err = refused.value.response
    assert err["Error"]["Code"] == "AccessDenied"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "is not authorized to perform: iam:GetRole" in err["Error"]["Message"]


def test_sessions_of_a_deleted_role_are_refused(server):
    iam = server.client("iam")
    name = "deleted-" + uuid.uuid4().hex[:6]
    arn = make_role(iam, name, "iam:GetRole")
    old = assume(server, arn)
    assert old.get_role(RoleName=name)["Role"]["Arn"] == arn
    delete_role(iam, name)
    assert_denied(lambda: old.get_role(RoleName="podid-admin-probe"))


def test_a_recreated_role_grants_nothing_to_sessions_of_the_old_one(server):
    """AWS binds a session to the role's unique id (AROA...): a new role of the same name, even
    with wider permissions, is a different principal."""
    iam = server.client("iam")
    name = "recreated-" + uuid.uuid4().hex[:6]
    arn = make_role(iam, name, "iam:ListRoles")
    old = assume(server, arn)
    first_id = iam.get_role(RoleName=name)["Role"]["RoleId"]
    delete_role(iam, name)
    make_role(iam, name, "iam:*")
    assert iam.get_role(RoleName=name)["Role"]["RoleId"] != first_id

    assert_denied(lambda: old.get_role(RoleName=name))
    # The session's own identity still authenticates (GetCallerIdentity needs no permission)...
    ident = server.client("sts", *creds_of(old)).get_caller_identity()
    assert ident["UserId"].startswith(first_id + ":")
    # ...and a session of the new role gets the new role's permissions.
    assert assume(server, arn).get_role(RoleName=name)["Role"]["RoleId"] != first_id


def creds_of(client):
    c = client._request_signer._credentials
    return c.access_key, c.secret_key, c.token
