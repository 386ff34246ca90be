"""IAM privilege escalation through the real clients: a narrow user reaching for other users, for
roles it may not pass (finding 9), sessions narrowed by session policies, and sessions that
outlive their role (finding 1) or its revocation (finding 2)."""
import json
import subprocess
import time
import uuid

import botocore.exceptions
import pytest

import helpers as h
from conftest import ACCOUNT, PODID_BIN, REGION

SELF_KEYS = h.policy(h.allow("iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"))


def uid():
    return uuid.uuid4().hex[:6]


def refusal(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def denied(arn, action, resource, code="AccessDenied", status=403):
    return (status, code, f"User: {arn} is not authorized to perform: {action} on resource: {resource} "
                          f"because no identity-based policy allows the {action} action")


def user_with(server, name, document):
    iam = server.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=document)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


@pytest.fixture(scope="module")
def self_keys_user(server):
    name = "sec-selfkeys-" + uid()
    return name, user_with(server, name, SELF_KEYS)


@pytest.mark.parametrize("victim", ["other", "podid-admin"])
def test_create_access_key_for_another_user(server, self_keys_user, victim):
    name, key = self_keys_user
    if victim == "other":
        victim = "sec-victim-" + uid()
        server.client("iam").create_user(UserName=victim)
    iam = server.client("iam", *key)
    assert refusal(lambda: iam.create_access_key(UserName=victim)) == denied(
        f"arn:aws:iam::{ACCOUNT}:user/{name}", "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/{victim}")
    if victim.startswith("sec-victim-"):
        assert iam.create_access_key(UserName=name)["AccessKey"]["UserName"] == name  # the control


@pytest.mark.parametrize("attempt", ["put_user_policy", "attach_user_policy", "create_role", "delete_admin_key"])
def test_self_keys_user_cannot_widen_itself(server, self_keys_user, attempt):
    name, key = self_keys_user
    iam = server.client("iam", *key)
    me = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    calls = {
        "put_user_policy": (lambda: iam.put_user_policy(UserName=name, PolicyName="x", PolicyDocument=h.policy(
            h.allow("*"))), "iam:PutUserPolicy", me),
        "attach_user_policy": (lambda: iam.attach_user_policy(
            UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"), "iam:AttachUserPolicy", me),
        "create_role": (lambda: iam.create_role(RoleName="sec-esc-" + uid(), AssumeRolePolicyDocument=json.dumps(
            h.ACCOUNT_TRUST)), "iam:CreateRole", None),
        "delete_admin_key": (lambda: iam.delete_access_key(UserName="podid-admin", AccessKeyId=server.access_key),
                             "iam:DeleteAccessKey", f"arn:aws:iam::{ACCOUNT}:user/podid-admin"),
    }
    call, action, resource = calls[attempt]
    status, code, message = refusal(call)
    assert (status, code) == (403, "AccessDenied")
    if resource:
        assert message == denied(me, action, resource)[2]
    else:
        assert message.startswith(f"User: {me} is not authorized to perform: {action} on resource: "
                                  f"arn:aws:iam::{ACCOUNT}:role/sec-esc-")


# --- iam:PassRole (finding 9) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pass_world(server):
    """Cluster `sec-pass`, an admin-powered role, a harmless role, and association writers."""
    server.register_cluster("sec-pass")
    iam = server.client("iam")
    admin_role = iam.create_role(RoleName="sec-pass-admin", AssumeRolePolicyDocument=json.dumps(h.TRUST))["Role"]["Arn"]
    iam.attach_role_policy(RoleName="sec-pass-admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    plain = iam.create_role(RoleName="sec-pass-plain", AssumeRolePolicyDocument=json.dumps(h.TRUST))["Role"]["Arn"]
    cluster_arn = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/sec-pass"
    eks_write = h.allow(["eks:CreatePodIdentityAssociation", "eks:UpdatePodIdentityAssociation",
                         "eks:DescribePodIdentityAssociation"], "*")
    users = {
        "no-passrole": user_with(server, "sec-nopass-" + uid(), h.policy(eks_write)),
        "passrole-plain": user_with(server, "sec-passplain-" + uid(), h.policy(eks_write, h.allow(
            "iam:PassRole", plain))),
        "passrole-other-service": user_with(server, "sec-passec2-" + uid(), h.policy(eks_write, h.allow(
            "iam:PassRole", "*", Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}))),
    }
    return {"admin": admin_role, "plain": plain, "cluster_arn": cluster_arn, "users": users}


def passrole_denied(server, user_key, role_arn):
    name = server.client("sts", *user_key).get_caller_identity()["Arn"]
    return denied(name, "iam:PassRole", role_arn, code="AccessDeniedException")


@pytest.mark.parametrize("user", ["no-passrole", "passrole-plain", "passrole-other-service"])
def test_create_association_without_passrole_on_the_role(server, pass_world, user):
    key = pass_world["users"][user]
    eks = server.client("eks", *key)
    sa = "sa-" + uid()
    assert refusal(lambda: eks.create_pod_identity_association(
        clusterName="sec-pass", namespace="default", serviceAccount=sa, roleArn=pass_world["admin"])) == \
        passrole_denied(server, key, pass_world["admin"])
    listed = server.client("eks").list_pod_identity_associations(clusterName="sec-pass", serviceAccount=sa)
    assert listed["associations"] == []


def test_passrole_on_the_target_role_does_not_pass_the_role(server, pass_world):
    """PassRole is checked on roleArn; a grant covering only targetRoleArn passes nothing."""
    key = user_with(server, "sec-passtarget-" + uid(), h.policy(
        h.allow("eks:CreatePodIdentityAssociation"), h.allow("iam:PassRole", pass_world["plain"])))
    eks = server.client("eks", *key)
    assert refusal(lambda: eks.create_pod_identity_association(
        clusterName="sec-pass", namespace="default", serviceAccount="sa-" + uid(), roleArn=pass_world["admin"],
        targetRoleArn=pass_world["plain"])) == passrole_denied(server, key, pass_world["admin"])


def test_update_association_to_a_role_not_passable(server, pass_world):
    key = pass_world["users"]["passrole-plain"]
    eks = server.client("eks", *key)
    a = eks.create_pod_identity_association(clusterName="sec-pass", namespace="default",
                                            serviceAccount="sa-" + uid(), roleArn=pass_world["plain"])["association"]
    assert refusal(lambda: eks.update_pod_identity_association(
        clusterName="sec-pass", associationId=a["associationId"], roleArn=pass_world["admin"])) == \
        passrole_denied(server, key, pass_world["admin"])
    now = server.client("eks").describe_pod_identity_association(clusterName="sec-pass",
                                                                 associationId=a["associationId"])
    assert now["association"]["roleArn"] == pass_world["plain"]


# --- session policies -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def powerful_role(server):
    iam = server.client("iam")
    name = "sec-powerful-" + uid()
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(h.ACCOUNT_TRUST))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    return name, arn


@pytest.mark.parametrize("how", ["inline", "managed-arn", "missing-arn"])
def test_session_policy_narrows_an_admin_role(server, powerful_role, how):
    name, arn = powerful_role
    sts = server.client("sts")
    if how == "inline":
        c = sts.assume_role(RoleArn=arn, RoleSessionName="narrow",
                            Policy=h.policy(h.allow("sts:GetCallerIdentity")))["Credentials"]
    elif how == "managed-arn":
        c = sts.assume_role(RoleArn=arn, RoleSessionName="narrow",
                            PolicyArns=[{"arn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}])["Credentials"]
    else:  # a managed session policy that does not exist allows nothing
        c = sts.assume_role(RoleArn=arn, RoleSessionName="narrow",
                            PolicyArns=[{"arn": f"arn:aws:iam::{ACCOUNT}:policy/no-such-policy"}])["Credentials"]
    iam = server.client("iam", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    status, code, message = refusal(lambda: iam.create_user(UserName="sec-narrow-" + uid()))
    assert (status, code) == (403, "AccessDenied")
    assert message.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{name}/narrow is not authorized to perform: "
                              "iam:CreateUser on resource: ")


def test_chained_session_cannot_assume_a_role_whose_trust_names_another_principal(server, powerful_role):
    iam = server.client("iam")
    name = "sec-guarded-" + uid()
    guarded = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/podid-admin"}}]}))
    c = server.client("sts").assume_role(RoleArn=powerful_role[1], RoleSessionName="chain")["Credentials"]
    sts = server.client("sts", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    status, code, message = refusal(lambda: sts.assume_role(RoleArn=guarded["Role"]["Arn"], RoleSessionName="xx"))
    assert (status, code) == (403, "AccessDenied")
    assert message == (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{powerful_role[0]}/chain is not authorized to "
                       f"perform: sts:AssumeRole on resource: {guarded['Role']['Arn']}")


# --- findings 1 and 2: sessions bound to their role, and revocable --------------------------


def role_session(server, actions):
    iam = server.client("iam")
    name = "sec-bound-" + uid()
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(h.ACCOUNT_TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=h.policy(h.allow(actions)))
    c = server.client("sts").assume_role(RoleArn=arn, RoleSessionName="old")["Credentials"]
    return name, arn, server.client("iam", c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


def drop_role(iam, name):
    iam.delete_role_policy(RoleName=name, PolicyName="p")
    iam.delete_role(RoleName=name)


@pytest.mark.parametrize("after", ["deleted", "recreated-wider"])
def test_session_outliving_its_role(server, after):
    iam = server.client("iam")
    name, arn, old = role_session(server, "iam:GetRole")
    assert old.get_role(RoleName=name)["Role"]["Arn"] == arn
    drop_role(iam, name)
    if after == "recreated-wider":
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(h.ACCOUNT_TRUST))
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=h.policy(h.allow("iam:*")))
    target = name if after == "recreated-wider" else "podid-admin"
    status, code, message = refusal(lambda: old.get_role(RoleName=target))
    assert (status, code) == (403, "AccessDenied")
    assert message == (f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{name}/old is not authorized to perform: "
                       f"iam:GetRole on resource: arn:aws:iam::{ACCOUNT}:role/{target} because no identity-based "
                       "policy allows the iam:GetRole action")


def test_revoked_session_is_refused_and_cannot_lift_its_revocation(server):
    """`podid role revoke-sessions` writes AWSRevokeOlderSessions; a revoked session, even with
    iam:* on the role, cannot delete that deny."""
    name, arn, old = role_session(server, "iam:*")
    time.sleep(1.1)
    out = subprocess.run([PODID_BIN, "role", "revoke-sessions", "--role-name", name], env=server.cli_env(),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    status, code, message = refusal(lambda: old.delete_role_policy(RoleName=name, PolicyName="AWSRevokeOlderSessions"))
    assert (status, code) == (403, "AccessDenied")
    assert message.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{name}/old is not authorized to perform: "
                              f"iam:DeleteRolePolicy on resource: {arn}")
    doc = server.client("iam").get_role_policy(RoleName=name, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    assert doc["Statement"][0]["Effect"] == "Deny"


def test_revocation_written_by_any_iam_client(server):
    """The console's deny, written with boto3: sessions issued before the date are refused."""
    name, arn, old = role_session(server, "iam:GetRole")
    time.sleep(1.1)
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    server.client("iam").put_role_policy(RoleName=name, PolicyName="AWSRevokeOlderSessions", PolicyDocument=h.policy(
        {"Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}}}))
    status, code, message = refusal(lambda: old.get_role(RoleName=name))
    assert (status, code) == (403, "AccessDenied")
    assert message.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{name}/old is not authorized to perform: "
                              f"iam:GetRole on resource: {arn}")


def test_explicit_deny_is_worded_as_aws_words_it(server):
    name, arn, old = role_session(server, "iam:GetRole")
    server.client("iam").put_role_policy(RoleName=name, PolicyName="deny", PolicyDocument=h.policy(
        {"Effect": "Deny", "Action": "iam:GetRole", "Resource": "*"}))
    assert refusal(lambda: old.get_role(RoleName=name)) == (
        403, "AccessDenied", f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{name}/old is not authorized to perform: "
                             f"iam:GetRole on resource: {arn} with an explicit deny in an identity-based policy")
