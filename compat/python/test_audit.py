"""The audit trail records every IAM write and every denial on every API, with the error code,
as CloudTrail does; and never a secret. Read back through `aws cloudtrail lookup-events`'s API."""
import json
import time
import uuid

import botocore.exceptions
import pytest

from conftest import ACCOUNT

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
    "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})


def events(server, predicate, name=None, username=None, want=1, timeout=5):
    """Records matching `predicate` among LookupEvents' answers, waiting for the audit writer."""
    attr = ({"AttributeKey": "EventName", "AttributeValue": name} if name
            else {"AttributeKey": "Username", "AttributeValue": username})
    ct = server.client("cloudtrail")
    deadline = time.time() + timeout
    while True:
        found = [r for r in (json.loads(e["CloudTrailEvent"])
                             for e in ct.lookup_events(LookupAttributes=[attr], MaxResults=50)["Events"])
                 if predicate(r)]
        if len(found) >= want or time.time() > deadline:
            return found
        time.sleep(0.1)


def test_every_iam_write_is_recorded_without_secrets(server):
    iam = server.client("iam")
    role, user = "audited-" + uuid.uuid4().hex[:6], "audited-" + uuid.uuid4().hex[:6]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=POLICY)
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=TRUST)
    iam.tag_role(RoleName=role, Tags=[{"Key": "team", "Value": "a"}])
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    iam.get_role(RoleName=role)  # a read: not recorded

    for name in ["CreateRole", "PutRolePolicy", "AttachRolePolicy", "UpdateAssumeRolePolicy", "TagRole"]:
        found = events(server, lambda r: r["requestParameters"].get("roleName") == role, name=name)
        assert len(found) == 1, name
        r = found[0]
        assert r["eventSource"] == "iam.amazonaws.com" and r["readOnly"] is False
        assert "errorCode" not in r
        assert r["userIdentity"]["userName"] == "podid-admin"
        assert {"type": "AWS::IAM::Role", "ARN": role, "accountId": ACCOUNT} in r["resources"]
    assert not events(server, lambda r: r["requestParameters"].get("roleName") == role,
                      name="GetRole", timeout=0.5)

    created = events(server, lambda r: r["requestParameters"].get("userName") == user,
                     name="CreateAccessKey")
    assert len(created) == 1
    assert created[0]["responseElements"]["accessKey"]["accessKeyId"] == key["AccessKeyId"]
    assert created[0]["responseElements"]["accessKey"]["status"] == "Active"
    assert len(events(server, lambda r: r["requestParameters"].get("accessKeyId") == key["AccessKeyId"],
                      name="DeleteAccessKey")) == 1
    everything = json.dumps(events(server, lambda r: True, username="podid-admin", want=50, timeout=0.5))
    assert key["SecretAccessKey"] not in everything
    assert server.secret_key not in everything


def test_refused_iam_writes_carry_their_error_code(server):
    iam = server.client("iam")
    role = "twice-" + uuid.uuid4().hex[:6]
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    with pytest.raises(botocore.exceptions.ClientError):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    with pytest.raises(botocore.exceptions.ClientError):
        iam.put_role_policy(RoleName=role, PolicyName="bad", PolicyDocument="{not json")
    found = events(server, lambda r: r["requestParameters"].get("roleName") == role, name="CreateRole", want=2)
    assert sorted(r.get("errorCode", "") for r in found) == ["", "EntityAlreadyExists"]
    bad = events(server, lambda r: r["requestParameters"].get("roleName") == role, name="PutRolePolicy")
    assert [r["errorCode"] for r in bad] == ["MalformedPolicyDocument"]


@pytest.fixture
def powerless(server):
    """A user with no policy at all: every call it makes is denied."""
    iam = server.client("iam")
    name = "powerless-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return name, (k["AccessKeyId"], k["SecretAccessKey"])


def denied(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_denials_on_every_api_are_recorded(server, powerless, cluster):
    name, key = powerless
    assert denied(lambda: server.client("iam", *key).list_roles()) == "AccessDenied"
    assert denied(lambda: server.client("iam", *key).create_role(
        RoleName="nope-" + name, AssumeRolePolicyDocument=TRUST)) == "AccessDenied"
    eks = server.client("eks", *key)
    assert denied(lambda: eks.list_clusters()) == "AccessDeniedException"
    assert denied(lambda: eks.create_pod_identity_association(
        clusterName=cluster, namespace="ns", serviceAccount="sa",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/x")) == "AccessDeniedException"
    assert denied(lambda: server.client("cloudtrail", *key).lookup_events()) == "AccessDeniedException"
    assert denied(lambda: server.client("sts", *key).assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/x", RoleSessionName="session")) == "AccessDenied"

    found = events(server, lambda r: "errorCode" in r, username=name, want=6)
    by_name = {(r["eventSource"], r["eventName"]): r for r in found}
    expected = {
        ("iam.amazonaws.com", "ListRoles"): ("AccessDenied", True),
        ("iam.amazonaws.com", "CreateRole"): ("AccessDenied", False),
        ("eks.amazonaws.com", "ListClusters"): ("AccessDeniedException", True),
        ("eks.amazonaws.com", "CreatePodIdentityAssociation"): ("AccessDeniedException", False),
        ("cloudtrail.amazonaws.com", "LookupEvents"): ("AccessDeniedException", True),
        ("sts.amazonaws.com", "AssumeRole"): ("AccessDenied", False),
    }
    assert set(by_name) == set(expected), sorted(by_name)
    for k, (code, read_only) in expected.items():
        r = by_name[k]
        assert (r["errorCode"], r["readOnly"]) == (code, read_only), k
        assert "is not authorized to perform" in r["errorMessage"]
        assert r["userIdentity"]["accessKeyId"] == key[0]
    assert by_name[("eks.amazonaws.com", "CreatePodIdentityAssociation")]["requestParameters"] == {
        "clusterName": cluster}


def test_refused_eks_writes_are_recorded(server, cluster):
    eks = server.client("eks")
    with pytest.raises(botocore.exceptions.ClientError):
        eks.delete_pod_identity_association(clusterName=cluster, associationId="a-doesnotexist0000")
    found = events(server, lambda r: r["requestParameters"].get("associationId") == "a-doesnotexist0000",
                   name="DeletePodIdentityAssociation")
    assert [r["errorCode"] for r in found] == ["ResourceNotFoundException"]
