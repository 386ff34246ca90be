"""Credential issuance: EKS Auth AssumeRoleForPodIdentity, local IAM and STS, with the attacks.

A cluster whose token-signing key this test owns is registered, so every malformed, forged or
mis-claimed token can be built. Each negative case asserts the exact AWS error code and status.
"""
import json
import time
import uuid

import botocore.exceptions
import pytest

import jwt_tools as jt
from conftest import ACCOUNT, REGION, Server

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                   "Action": ["sts:AssumeRole", "sts:TagSession"]}],
}
NODE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity", "Resource": "*"}],
}


class World:
    """One cluster with its own key, roles, associations and a node user."""

    def __init__(self, server, name):
        self.server, self.cluster = server, name
        self.issuer = f"https://oidc.example/{name}"
        self.key = jt.Key()
        server.register_cluster(name, issuer=self.issuer, jwks=self.key.jwks())
        self.iam = server.client("iam")
        self.eks = server.client("eks")
        self.roles = {}
        user = f"node-{name}"
        self.iam.create_user(UserName=user)
        self.iam.put_user_policy(UserName=user, PolicyName="node", PolicyDocument=json.dumps(NODE_POLICY))
        k = self.iam.create_access_key(UserName=user)["AccessKey"]
        self.node_key = (k["AccessKeyId"], k["SecretAccessKey"])
        self.node = server.client("eks-auth", *self.node_key)

    def role(self, name, trust=TRUST, attach_s3=True):
        r = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        if attach_s3:
            self.iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
        return r["Arn"]

    def associate(self, ns, sa, role_arn, **kw):
        return self.eks.create_pod_identity_association(
            clusterName=self.cluster, namespace=ns, serviceAccount=sa, roleArn=role_arn, **kw)["association"]

    def token(self, ns, sa, **kw):
        return jt.sign_rs256(self.key, jt.claims(self.issuer, ns, sa, **kw))

    def assume(self, token, **kw):
        return self.node.assume_role_for_pod_identity(clusterName=self.cluster, token=token, **kw)


@pytest.fixture(scope="module")
def world(server):
    w = World(server, "creds")
    w.ok_role = w.role("pod-role")
    w.associate("default", "my-app", w.ok_role)
    return w


def code_of(excinfo):
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_issuance_end_to_end(world, server):
    pod_uid = str(uuid.uuid4())
    out = world.assume(world.token("default", "my-app", pod="web-7d9f", pod_uid=pod_uid))
    assert out["subject"] == {"namespace": "default", "serviceAccount": "my-app"}
    assert out["audience"] == "pods.eks.amazonaws.com"
    creds = out["credentials"]
    assert creds["accessKeyId"].startswith("ASIA") and len(creds["accessKeyId"]) == 20
    lifetime = creds["expiration"].timestamp() - time.time()
    # EKS's rule: six hours whatever the role's MaxSessionDuration (this role has IAM's default 1 h).
    assert 6 * 3600 - 60 < lifetime <= 6 * 3600
    arn = out["assumedRoleUser"]["arn"]
    assert arn.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/pod-role/eks-creds-web-7d9f-")
    assert len(arn.rsplit("/", 1)[1]) <= 64
    assert out["assumedRoleUser"]["assumeRoleId"].startswith("AROA")
    assert out["podIdentityAssociation"]["associationId"].startswith("a-")

    sts = server.client("sts", creds["accessKeyId"], creds["secretAccessKey"], creds["sessionToken"])
    me = sts.get_caller_identity()
    assert me["Arn"] == arn and me["Account"] == ACCOUNT
    assert me["UserId"] == out["assumedRoleUser"]["assumeRoleId"]


def test_six_hours_even_when_the_role_allows_longer(world):
    world.iam.create_role(RoleName="long-role", AssumeRolePolicyDocument=json.dumps(TRUST), MaxSessionDuration=43200)
    world.associate("long", "sa", f"arn:aws:iam::{ACCOUNT}:role/long-role")
    out = world.assume(world.token("long", "sa"))
    lifetime = out["credentials"]["expiration"].timestamp() - time.time()
    assert 6 * 3600 - 60 < lifetime <= 6 * 3600


def test_session_tags_reach_abac_policies(world, server):
    """${aws:PrincipalTag/kubernetes-namespace} in a role policy sees the session tag."""
    arn = world.role("abac-role", attach_s3=False)
    world.iam.put_role_policy(RoleName="abac-role", PolicyName="abac", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
                      {"Effect": "Allow", "Action": "eks:DescribeCluster",
                       "Resource": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/${{aws:PrincipalTag/kubernetes-namespace}}"}],
    }))
    world.associate("creds", "abac", arn)
    c = world.assume(world.token("creds", "abac"))["credentials"]
    eks = server.client("eks", c["accessKeyId"], c["secretAccessKey"], c["sessionToken"])
    assert eks.describe_cluster(name="creds")["cluster"]["name"] == "creds"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.list_clusters()
    assert code_of(e) == ("AccessDeniedException", 403)


def test_pod_sessions_die_with_their_role(world, server):
    """Pod credentials are bound to the role's unique id: deleting the role (or recreating one of
    the same name with wider permissions) leaves the issued session with no permission."""
    name = "doomed-role"
    arn = world.role(name, attach_s3=False)
    allow_describe = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": "*"}]})
    world.iam.put_role_policy(RoleName=name, PolicyName="d", PolicyDocument=allow_describe)
    world.associate("creds", "doomed", arn)
    c = world.assume(world.token("creds", "doomed"))["credentials"]
    eks = server.client("eks", c["accessKeyId"], c["secretAccessKey"], c["sessionToken"])
    assert eks.describe_cluster(name="creds")["cluster"]["name"] == "creds"

    world.iam.delete_role_policy(RoleName=name, PolicyName="d")
    world.iam.delete_role(RoleName=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.describe_cluster(name="creds")
    assert code_of(e) == ("AccessDeniedException", 403)

    world.role(name, attach_s3=False)
    world.iam.put_role_policy(RoleName=name, PolicyName="d", PolicyDocument=allow_describe)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.describe_cluster(name="creds")
    assert code_of(e) == ("AccessDeniedException", 403)
    # A pod that gets credentials now is a session of the new role, and is allowed.
    c = world.assume(world.token("creds", "doomed"))["credentials"]
    eks = server.client("eks", c["accessKeyId"], c["secretAccessKey"], c["sessionToken"])
    assert eks.describe_cluster(name="creds")["cluster"]["name"] == "creds"


def test_target_role_chaining_with_external_id(world, server):
    first = world.role("chain-first", attach_s3=False)
    target_name = "chain-target"
    a = world.associate("chain", "sa", first, targetRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{target_name}")
    world.iam.put_role_policy(RoleName="chain-first", PolicyName="hop", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
                       "Resource": f"arn:aws:iam::{ACCOUNT}:role/{target_name}"}]}))
    world.iam.create_role(RoleName=target_name, MaxSessionDuration=7200, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": ["sts:AssumeRole", "sts:TagSession"],
                       "Condition": {"ArnEquals": {"aws:PrincipalARN": first},
                                     "StringEquals": {"sts:ExternalId": a["externalId"]}}}]}))
    out = world.assume(world.token("chain", "sa"))
    assert ":assumed-role/chain-target/" in out["assumedRoleUser"]["arn"]
    lifetime = out["credentials"]["expiration"].timestamp() - time.time()
    assert 58 * 60 < lifetime <= 59 * 60

    # A trust that names another external id refuses.
    world.iam.update_assume_role_policy(RoleName=target_name, PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": ["sts:AssumeRole", "sts:TagSession"],
                       "Condition": {"StringEquals": {"sts:ExternalId": "someone-else"}}}]}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.assume(world.token("chain", "sa"))
    assert code_of(e) == ("AccessDeniedException", 400)


def test_session_policy_of_the_association_intersects(world, server):
    arn = world.role("policy-role", attach_s3=False)
    world.iam.attach_role_policy(RoleName="policy-role", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    world.associate("pol", "sa", arn, disableSessionTags=True, policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}))
    c = world.assume(world.token("pol", "sa"))["credentials"]
    sts = server.client("sts", c["accessKeyId"], c["secretAccessKey"], c["sessionToken"])
    sts.get_caller_identity()
    eks = server.client("eks", c["accessKeyId"], c["secretAccessKey"], c["sessionToken"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.list_clusters()
    assert code_of(e) == ("AccessDeniedException", 403)


# --- the negative matrix ---------------------------------------------------------------------


def token_case(world, case):
    iss, ns, sa = world.issuer, "default", "my-app"
    now = int(time.time())
    good = jt.claims(iss, ns, sa)
    other = jt.Key()
    cases = {
        "forged_signature": lambda: jt.flip_signature(world.token(ns, sa)),
        "alg_none": lambda: jt.none_alg(good, kid=world.key.kid),
        "hs256_with_public_key": lambda: jt.hs256_with_public_key(world.key, good),
        "unknown_kid": lambda: jt.sign_rs256(other, good),
        "signed_by_other_key_claiming_our_kid": lambda: jt.sign_rs256(other, good, kid=world.key.kid),
        "wrong_issuer": lambda: jt.sign_rs256(world.key, jt.claims("https://evil.example", ns, sa)),
        "wrong_audience": lambda: jt.sign_rs256(world.key, jt.claims(iss, ns, sa, audience=("sts.amazonaws.com",))),
        "not_yet_valid": lambda: jt.sign_rs256(world.key, jt.claims(iss, ns, sa, nbf=now + 600)),
        "issued_in_future": lambda: jt.sign_rs256(world.key, jt.claims(iss, ns, sa, now=now + 600)),
        "subject_mismatch": lambda: jt.sign_rs256(world.key, {**good, "sub": "system:serviceaccount:kube-system:admin"}),
        "missing_kubernetes_claims": lambda: jt.sign_rs256(world.key, {k: v for k, v in good.items() if k != "kubernetes.io"}),
        "missing_exp": lambda: jt.sign_rs256(world.key, {k: v for k, v in good.items() if k != "exp"}),
        "not_bound_to_a_pod": lambda: jt.sign_rs256(world.key, {**good, "kubernetes.io": {
            k: v for k, v in good["kubernetes.io"].items() if k != "pod"}}),
        "es256_header_on_rsa_key": lambda: jt.sign_rs256(world.key, good, alg="ES256"),
        "two_segments": lambda: "abc.def",
        "garbage_segments": lambda: "abc.def.ghi",
        "oversized": lambda: "a" * 20000 + ".b.c",
    }
    return cases[case]()


@pytest.mark.parametrize("case", [
    "forged_signature", "alg_none", "hs256_with_public_key", "unknown_kid", "signed_by_other_key_claiming_our_kid",
    "wrong_issuer", "wrong_audience", "not_yet_valid", "issued_in_future", "subject_mismatch",
    "missing_kubernetes_claims", "missing_exp", "not_bound_to_a_pod", "es256_header_on_rsa_key", "two_segments", "garbage_segments", "oversized",
])
def test_bad_tokens_are_invalid(world, case):
    node = world.server.client("eks-auth", *world.node_key, config=botocore.config.Config(parameter_validation=False))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        node.assume_role_for_pod_identity(clusterName=world.cluster, token=token_case(world, case))
    assert code_of(e) == ("InvalidTokenException", 400), case


def test_expired_token(world):
    t = world.token("default", "my-app", now=int(time.time()) - 3600, ttl=600)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.assume(t)
    assert code_of(e) == ("ExpiredTokenException", 400)


def test_expiry_within_leeway_is_accepted(world):
    t = world.token("default", "my-app", now=int(time.time()) - 630, ttl=600)  # expired 30 s ago
    assert world.assume(t)["credentials"]["accessKeyId"].startswith("ASIA")


def test_another_clusters_token(world, server):
    other = World(server, "creds-other")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.assume(other.token("default", "my-app"))
    assert code_of(e) == ("InvalidTokenException", 400)


def test_service_account_without_association(world):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.assume(world.token("default", "nobody"))
    assert code_of(e) == ("ResourceNotFoundException", 404)


def test_unknown_cluster(world, server):
    node = server.client("eks-auth", *world.node_key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        node.assume_role_for_pod_identity(clusterName="no-such-cluster", token=world.token("default", "my-app"))
    assert code_of(e) == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("name,trust", [
    ("no-service-principal", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}),
    ("no-tag-session", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    ("failing-condition", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
         "Condition": {"StringEquals": {"aws:RequestTag/kubernetes-namespace": "production"}}}]}),
    ("wrong-source-arn", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
         "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/elsewhere"}}}]}),
    ("explicit-deny", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]},
        {"Effect": "Deny", "Principal": "*", "Action": "sts:TagSession"}]}),
])
def test_trust_policy_refusals(world, name, trust):
    arn = world.role(f"deny-{name}", trust=trust, attach_s3=False)
    world.associate("deny", name, arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.assume(world.token("deny", name))
    assert code_of(e) == ("AccessDeniedException", 400)


def test_condition_that_passes(world):
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
         "Condition": {"StringEquals": {"aws:RequestTag/kubernetes-namespace": "cond", "aws:SourceAccount": ACCOUNT}}}]}
    arn = world.role("cond-ok", trust=trust, attach_s3=False)
    world.associate("cond", "sa", arn)
    assert world.assume(world.token("cond", "sa"))["credentials"]


def test_disabled_session_tags_need_only_assume_role(world):
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    arn = world.role("no-tags-role", trust=trust, attach_s3=False)
    world.associate("notags", "sa", arn, disableSessionTags=True)
    assert world.assume(world.token("notags", "sa"))["credentials"]


def test_missing_role(world):
    world.associate("ghost", "sa", f"arn:aws:iam::{ACCOUNT}:role/does-not-exist")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.assume(world.token("ghost", "sa"))
    assert code_of(e) == ("AccessDeniedException", 400)


def test_node_name_mismatch(world):
    t = world.token("default", "my-app", node="node-a")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        world.assume(t, eksNodeName="node-b")
    assert code_of(e) == ("InvalidTokenException", 400)
    assert world.assume(t, eksNodeName="node-a")["credentials"]


def test_node_credentials_cannot_administer(world):
    eks = world.server.client("eks", *world.node_key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.create_pod_identity_association(clusterName=world.cluster, namespace="x", serviceAccount="y",
                                            roleArn=world.ok_role)
    assert code_of(e) == ("AccessDeniedException", 403)
    iam = world.server.client("iam", *world.node_key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        iam.create_role(RoleName="escalate", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert code_of(e) == ("AccessDenied", 403)


def test_node_scoped_to_another_cluster_is_denied(world, server):
    iam = server.client("iam")
    iam.create_user(UserName="node-elsewhere")
    iam.put_user_policy(UserName="node-elsewhere", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "eks-auth:AssumeRoleForPodIdentity",
                                                "Resource": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/elsewhere"}]}))
    k = iam.create_access_key(UserName="node-elsewhere")["AccessKey"]
    node = server.client("eks-auth", k["AccessKeyId"], k["SecretAccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        node.assume_role_for_pod_identity(clusterName=world.cluster, token=world.token("default", "my-app"))
    assert code_of(e) == ("AccessDeniedException", 400)


def test_tampered_and_swapped_session_tokens(world, server):
    c = world.assume(world.token("default", "my-app"))["credentials"]
    tok = c["sessionToken"]
    mid = len(tok) // 2
    tampered = tok[:mid] + ("A" if tok[mid] != "A" else "B") + tok[mid + 1:]
    sts = server.client("sts", c["accessKeyId"], c["secretAccessKey"], tampered)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_caller_identity()
    assert code_of(e) == ("InvalidClientTokenId", 403)
    c2 = world.assume(world.token("default", "my-app"))["credentials"]
    swapped = server.client("sts", c2["accessKeyId"], c2["secretAccessKey"], c["sessionToken"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        swapped.get_caller_identity()
    assert code_of(e) == ("InvalidClientTokenId", 403)
    wrong_secret = server.client("sts", c["accessKeyId"], "x" * 40, c["sessionToken"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        wrong_secret.get_caller_identity()
    assert code_of(e) == ("SignatureDoesNotMatch", 403)


def test_expired_temporary_credentials(tmp_path):
    srv = Server(str(tmp_path / "short"), ["--max-credential-duration", "2s"]).start()
    try:
        w = World(srv, "short")
        w.associate("default", "my-app", w.role("short-role"))
        c = w.assume(w.token("default", "my-app"))["credentials"]
        time.sleep(3)
        sts = srv.client("sts", c["accessKeyId"], c["secretAccessKey"], c["sessionToken"])
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sts.get_caller_identity()
        assert code_of(e) == ("ExpiredToken", 400)
    finally:
        srv.stop()


def test_unsigned_eks_auth_call(world, server):
    import urllib.request
    req = urllib.request.Request(f"{server.endpoint}/clusters/{world.cluster}/assume-role-for-pod-identity",
                                 data=json.dumps({"token": world.token("default", "my-app")}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_audit_trail_records_allowed_and_denied(world, server):
    world.assume(world.token("default", "my-app"))
    with pytest.raises(botocore.exceptions.ClientError):
        world.assume(world.token("default", "nobody"))
    ct = server.client("cloudtrail")
    deadline = time.time() + 5
    while True:
        events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRoleForPodIdentity"}])["Events"]
        records = [json.loads(e["CloudTrailEvent"]) for e in events]
        denied = [r for r in records if r.get("errorCode") == "ResourceNotFoundException"]
        allowed = [r for r in records if "errorCode" not in r]
        if (denied and allowed) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert denied and allowed
    blob = json.dumps(records)
    assert "sessionToken" not in blob and "secretAccessKey" not in blob and world.key.kid not in blob
    sts_events = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}])["Events"]
    invoked = [json.loads(e["CloudTrailEvent"])["userIdentity"].get("invokedBy") for e in sts_events]
    assert "pods.eks.amazonaws.com" in invoked
