"""EKS Auth AssumeRoleForPodIdentity with forged, mis-claimed and misdirected service-account
tokens, and node credentials that do not cover the cluster: the exact code, status and message."""
import time

import botocore.config
import botocore.exceptions
import pytest

import helpers as h
import jwt_tools as jt
from conftest import ACCOUNT, REGION

INVALID = "The service account token is invalid: "


@pytest.fixture(scope="module")
def lax_node(world):
    """The node's client without botocore's parameter validation (oversized and empty tokens)."""
    return world.server.client("eks-auth", *world.node_key, config=botocore.config.Config(
        parameter_validation=False, retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def other_world(server):
    return h.World(server, "sec-other")


def refusal(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def forged(world, other_world, case):
    now = int(time.time())
    good = world.claims()
    pod_less = {**good, "kubernetes.io": {k: v for k, v in good["kubernetes.io"].items() if k != "pod"}}
    return {
        "forged_signature": lambda: jt.flip_signature(world.token()),
        "alg_none": lambda: jt.none_alg(good, kid=world.key.kid),
        "hs256_signed_with_the_public_key": lambda: jt.hs256_with_public_key(world.key, good),
        "unknown_kid": lambda: jt.sign_rs256(h.new_key(), good),
        "our_kid_another_key": lambda: jt.sign_rs256(h.new_key(), good, kid=world.key.kid),
        "not_yet_valid": lambda: world.token(nbf=now + 600),
        "wrong_audience": lambda: world.token(audience=("sts.amazonaws.com",)),
        "wrong_issuer": lambda: jt.sign_rs256(world.key, jt.claims("https://evil.example", "default", "app")),
        "another_clusters_token": lambda: other_world.token(),
        "missing_pod_claim": lambda: jt.sign_rs256(world.key, pod_less),
        "oversized": lambda: jt.sign_rs256(world.key, {**good, "pad": "x" * 20000}),
        "crit_header": lambda: jt.encode({"alg": "RS256", "kid": world.key.kid, "crit": ["exp"]}, good) + ".AAAA",
        "empty": lambda: "",
    }[case]()


@pytest.mark.parametrize("case,reason", [
    ("forged_signature", "token signature is invalid."),
    ("alg_none", "token algorithm is not accepted."),
    ("hs256_signed_with_the_public_key", "token algorithm is not accepted."),
    ("unknown_kid", "token signing key is not in the cluster key set."),
    ("our_kid_another_key", "token signature is invalid."),
    ("not_yet_valid", "token is not valid yet."),
    ("wrong_audience", "token audience does not include pods.eks.amazonaws.com."),
    ("wrong_issuer", "token issuer does not match the cluster issuer."),
    ("another_clusters_token", "token signing key is not in the cluster key set."),
    ("missing_pod_claim", "the token is not bound to a pod (no kubernetes.io.pod claim)."),
    ("oversized", "token is longer than 16384 bytes."),
    ("crit_header", "token is malformed: header has critical extensions."),
    ("empty", "token is malformed: expected three dot-separated segments."),
])
def test_bad_token(world, other_world, lax_node, case, reason):
    token = forged(world, other_world, case)
    assert refusal(lambda: lax_node.assume_role_for_pod_identity(clusterName=world.cluster, token=token)) == (
        400, "InvalidTokenException", INVALID + reason)


def test_expired_token(world):
    t = world.token(now=int(time.time()) - 7200, ttl=600)
    assert refusal(lambda: world.assume(t)) == (400, "ExpiredTokenException", "The service account token has expired.")


def test_token_replayed_against_another_cluster(world, other_world):
    """A pod's token of cluster A presented, by A's node, as a token of cluster B."""
    node = world.server.client("eks-auth", *world.node_key)
    assert refusal(lambda: node.assume_role_for_pod_identity(clusterName=other_world.cluster, token=world.token())) == (
        400, "InvalidTokenException", INVALID + "token signing key is not in the cluster key set.")


@pytest.mark.parametrize("ns,sa", [("default", "nobody"), ("kube-system", "app")])
def test_service_account_without_association(world, ns, sa):
    assert refusal(lambda: world.assume(world.token(ns, sa))) == (
        404, "ResourceNotFoundException",
        f"No Pod Identity Association found for service account {ns}/{sa} in cluster {world.cluster}.")


def test_node_credentials_of_another_cluster(world, server):
    """A node user whose policy names only another cluster's ARN."""
    iam = server.client("iam")
    iam.create_user(UserName="sec-node-elsewhere")
    iam.put_user_policy(UserName="sec-node-elsewhere", PolicyName="p", PolicyDocument=h.policy(h.allow(
        "eks-auth:AssumeRoleForPodIdentity", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/sec-other")))
    k = iam.create_access_key(UserName="sec-node-elsewhere")["AccessKey"]
    node = server.client("eks-auth", k["AccessKeyId"], k["SecretAccessKey"])
    assert refusal(lambda: node.assume_role_for_pod_identity(clusterName=world.cluster, token=world.token())) == (
        400, "AccessDeniedException",
        f"User: arn:aws:iam::{ACCOUNT}:user/sec-node-elsewhere is not authorized to perform: "
        f"eks-auth:AssumeRoleForPodIdentity on resource: arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{world.cluster}")


def test_pod_credentials_cannot_mint_more_pod_credentials(world, server):
    """A pod's own session (role without eks-auth permissions) cannot act as a node."""
    c = world.assume(world.token())["credentials"]
    node = server.client("eks-auth", c["accessKeyId"], c["secretAccessKey"], c["sessionToken"])
    status, code, message = refusal(lambda: node.assume_role_for_pod_identity(clusterName=world.cluster,
                                                                              token=world.token()))
    assert (status, code) == (400, "AccessDeniedException")
    assert message.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/sec-pod-role/eks-{world.cluster}-")
    assert message.endswith(" is not authorized to perform: eks-auth:AssumeRoleForPodIdentity on resource: "
                            f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{world.cluster}")


def test_token_for_another_node(world):
    t = world.token(node="node-a")
    assert refusal(lambda: world.assume(t, eksNodeName="node-b")) == (
        400, "InvalidTokenException", "The token was issued for a pod on another node than eksNodeName.")
