"""Finding 3: every refusal an attacker causes leaves a trace with its error code (LookupEvents),
failed authentications leave none (no verified identity), and no secret reaches the trail."""
import json
import time
import uuid

import botocore.exceptions
import pytest

import helpers as h
from conftest import ACCOUNT


def events(server, predicate, username=None, name=None, want=1, timeout=5):
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


@pytest.fixture(scope="module")
def intruder(server):
    """A user allowed to create associations but nothing else (no PassRole, no admin API)."""
    iam = server.client("iam")
    name = "sec-intruder-" + uuid.uuid4().hex[:6]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=h.policy(
        h.allow("eks:CreatePodIdentityAssociation")))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return name, (k["AccessKeyId"], k["SecretAccessKey"])


def test_denied_passrole_is_recorded(server, world, intruder):
    name, key = intruder
    with pytest.raises(botocore.exceptions.ClientError):
        server.client("eks", *key).create_pod_identity_association(
            clusterName=world.cluster, namespace="audit", serviceAccount="sa", roleArn=world.ok_role)
    found = events(server, lambda r: r["eventName"] == "CreatePodIdentityAssociation", username=name)
    assert len(found) == 1
    r = found[0]
    assert (r["eventSource"], r["errorCode"], r["readOnly"]) == ("eks.amazonaws.com", "AccessDeniedException", False)
    assert r["errorMessage"].startswith(f"User: arn:aws:iam::{ACCOUNT}:user/{name} is not authorized to perform: "
                                        f"iam:PassRole on resource: {world.ok_role}")
    assert r["userIdentity"]["accessKeyId"] == key[0]


def test_denied_cluster_registration_is_recorded(server, intruder):
    name, key = intruder
    r = h.signed_call(server, "POST", "/podid/v1/clusters", json.dumps(
        {"name": "sec-evil", "issuer": "https://evil.example", "jwks": {"keys": []}}).encode(), [h.JSON],
        service="podid", key=key[0], secret=key[1])
    assert (r.status, r.error()[0]) == (403, "AccessDeniedException")
    found = events(server, lambda r: r["eventSource"] == "podid.amazonaws.com", username=name)
    assert [(e["eventName"], e["errorCode"]) for e in found] == [("RegisterCluster", "AccessDeniedException")]


def test_denied_trail_read_is_recorded(server, intruder):
    name, key = intruder
    with pytest.raises(botocore.exceptions.ClientError) as e:
        server.client("cloudtrail", *key).lookup_events()
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException", 400)
    found = events(server, lambda r: r["eventName"] == "LookupEvents", username=name)
    assert [(e["eventSource"], e["errorCode"], e["readOnly"]) for e in found] == [
        ("cloudtrail.amazonaws.com", "AccessDeniedException", True)]


def test_forged_pod_token_is_recorded_with_its_code(server, world):
    import jwt_tools as jt
    with pytest.raises(botocore.exceptions.ClientError):
        world.assume(jt.flip_signature(world.token(pod="audit-forged")))
    found = events(server, lambda r: r.get("errorCode") == "InvalidTokenException"
                   and r["userIdentity"].get("accessKeyId") == world.node_key[0], name="AssumeRoleForPodIdentity")
    assert found, "no InvalidTokenException event for the node's forged token"
    assert found[0]["eventSource"] == "eks-auth.amazonaws.com"
    assert found[0]["errorMessage"] == "The service account token is invalid: token signature is invalid."


def test_failed_authentication_is_not_an_event(server, intruder):
    """A bad signature with a real key id has no verified identity: nothing is recorded for it."""
    name, key = intruder
    r = h.signed_call(server, "GET", "/clusters", key=key[0], secret="x" * 40)
    assert (r.status, r.error()[0]) == (403, "InvalidSignatureException")
    time.sleep(0.3)  # the writer commits within 100 ms
    assert events(server, lambda r: r["eventName"] == "ListClusters", username=name, timeout=0) == []


def test_no_secret_reaches_the_trail(server, world):
    token = world.token(pod="audit-secret")
    c = world.assume(token)["credentials"]
    recorded = events(server, lambda r: c["accessKeyId"] in json.dumps(r), name="AssumeRoleForPodIdentity")
    assert recorded, "the issuance was not recorded"
    everything = json.dumps(events(server, lambda r: True, name="AssumeRoleForPodIdentity", want=50, timeout=0.3))
    everything += json.dumps(recorded)
    for secret in (c["secretAccessKey"], c["sessionToken"], world.node_key[1], token.split(".")[2]):
        assert secret not in everything
