"""Tokens exactly as a real kube-apiserver issues them, verified by podid; cluster registration
from a kubeconfig; key rotation on the API server."""
import json
import time
import urllib.error
import urllib.request
import uuid

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
import pytest

from conftest import podid_cli
from kube import ISSUER, NOBODY_TOKEN, claims_of, pod_manifest


def code_of(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def pod_for(setup, sa, node_name="node-without-object", **spec):
    return setup.kube.create(pod_manifest("pod-" + uuid.uuid4().hex[:8], sa, node_name=node_name, **spec))


def test_registration_reads_the_issuer_and_keys_through_the_api_server(kube, podid, setup):
    _, out, _ = podid_cli(podid, "cluster", "describe", "--name", setup.cluster)
    cluster = json.loads(out)["cluster"]
    assert cluster["issuer"] == ISSUER
    served = json.loads(kube.raw("/openid/v1/jwks"))
    assert [k["kid"] for k in cluster["jwks"]["keys"]] == [k["kid"] for k in served["keys"]]


def test_registration_without_discovery_rights_explains_itself(kube, podid):
    kubeconfig = kube.kubeconfig_for(NOBODY_TOKEN, "nobody.kubeconfig")
    code, _, err = podid_cli(podid, "cluster", "register", "--name", "k8s-nobody",
                             "--kubeconfig", kubeconfig, check=False)
    assert code != 0
    assert "system:service-account-issuer-discovery" in err, err
    assert "403" in err or "forbidden" in err.lower(), err


def test_a_pod_bound_token_becomes_credentials_with_the_pods_tags(setup):
    sa = setup.service_account()
    pod = pod_for(setup, sa)
    token = setup.kube.create_token("default", sa, pod=pod)
    claims = claims_of(token)["kubernetes.io"]
    assert claims["pod"] == {"name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
    # The pod's node has no Node object: the API server names the node without a uid.
    assert claims["node"] == {"name": "node-without-object"}, claims
    out = setup.node.assume_role_for_pod_identity(clusterName=setup.cluster, token=token)
    assert out["assumedRoleUser"]["arn"].startswith(
        f"arn:aws:sts::000000000000:assumed-role/{setup.role}/eks-k8s-pod-")
    subject = out["subject"]
    assert subject == {"namespace": "default", "serviceAccount": sa}
    assert out["podIdentityAssociation"]["associationArn"].startswith("arn:aws:eks:")
    # The session carries the real pod's name and uid as tags. STS GetCallerIdentity cannot show
    # tags, so read them from the audit trail's record of the issuance (written asynchronously).
    tags = session_tags(setup, out["assumedRoleUser"]["arn"])
    assert tags["kubernetes-pod-name"] == pod["metadata"]["name"]
    assert tags["kubernetes-pod-uid"] == pod["metadata"]["uid"]
    assert tags["kubernetes-service-account"] == sa
    assert tags["eks-cluster-name"] == setup.cluster


def session_tags(setup, assumed_role_arn):
    """The tags of the STS AssumeRole event that created `assumed_role_arn`."""
    trail = setup.podid.client("cloudtrail")
    deadline = time.time() + 10
    while time.time() < deadline:
        events = trail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}],
            MaxResults=50)["Events"]
        for e in events:
            record = json.loads(e["CloudTrailEvent"])
            if record.get("responseElements", {}).get("assumedRoleUser", {}).get("arn") == assumed_role_arn:
                return {t["key"]: t["value"] for t in record["requestParameters"]["tags"]}
        time.sleep(0.2)
    raise AssertionError(f"no AssumeRole event for {assumed_role_arn}")


def test_a_node_with_an_object_is_named_with_its_uid(setup):
    node = setup.kube.create({"apiVersion": "v1", "kind": "Node",
                              "metadata": {"name": "node-" + uuid.uuid4().hex[:6]}})
    sa = setup.service_account()
    pod = pod_for(setup, sa, node_name=node["metadata"]["name"])
    token = setup.kube.create_token("default", sa, pod=pod)
    assert claims_of(token)["kubernetes.io"]["node"] == {
        "name": node["metadata"]["name"], "uid": node["metadata"]["uid"]}
    setup.node.assume_role_for_pod_identity(clusterName=setup.cluster, token=token)
    # The agent names its node (eksNodeName): a token of a pod on another node is refused.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        assume_on_node(setup, token, "some-other-node")
    assert code_of(e)[0] == "InvalidTokenException"


def assume_on_node(setup, token, node_name):
    """AssumeRoleForPodIdentity with the agent's `eksNodeName` (boto3 does not model it)."""
    body = json.dumps({"token": token, "eksNodeName": node_name}).encode()
    url = f"{setup.podid.endpoint}/clusters/{setup.cluster}/assume-role-for-pod-identity"
    req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body,
                                         headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(*setup.node_key), "eks-auth",
                            "us-east-1").add_auth(req)
    p = req.prepare()
    try:
        urllib.request.urlopen(urllib.request.Request(p.url, data=body, method="POST",
                                                      headers=dict(p.headers.items())), timeout=10)
    except urllib.error.HTTPError as err:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": err.headers.get("x-amzn-errortype", "").split(":")[0]},
             "ResponseMetadata": {"HTTPStatusCode": err.code}}, "AssumeRoleForPodIdentity")
    raise AssertionError("a token for another node was accepted")


def test_a_token_not_bound_to_a_pod_is_refused(setup):
    sa = setup.service_account()
    token = setup.kube.create_token("default", sa)
    assert "pod" not in claims_of(token)["kubernetes.io"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        setup.node.assume_role_for_pod_identity(clusterName=setup.cluster, token=token)
    assert code_of(e) == ("InvalidTokenException", 400)
    assert "not bound to a pod" in e.value.response["Error"]["Message"]


def test_other_audiences_and_unassociated_accounts_are_refused(setup):
    sa = setup.service_account()
    pod = pod_for(setup, sa)
    sts_token = setup.kube.create_token("default", sa, pod=pod, audience="sts.amazonaws.com")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        setup.node.assume_role_for_pod_identity(clusterName=setup.cluster, token=sts_token)
    assert code_of(e) == ("InvalidTokenException", 400)

    loner = setup.service_account(associate=False)
    pod = pod_for(setup, loner)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        setup.node.assume_role_for_pod_identity(
            clusterName=setup.cluster, token=setup.kube.create_token("default", loner, pod=pod))
    assert code_of(e) == ("ResourceNotFoundException", 404)


def test_key_rotation_on_the_api_server(kube, podid, setup, tmp_path):
    """The API server starts signing with a new key. A `jwksUri` cluster picks it up by itself
    (an unknown `kid` triggers a refetch, at most one per 30 s); an inline cluster needs
    `podid cluster refresh`."""
    # A jwksUri cluster, fetched through the API server with its CA and a service-account
    # token (system:service-account-issuer-discovery is bound to all service accounts).
    kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "podid-discovery", "namespace": "default"}})
    token_file = tmp_path / "discovery-token"
    token_file.write_text(kube.create_token("default", "podid-discovery", audience=ISSUER))
    podid_cli(podid, "cluster", "register", "--name", "k8s-uri", "--issuer", ISSUER,
              "--jwks-uri", f"{kube.url}/openid/v1/jwks", "--jwks-ca-file", kube.ca,
              "--jwks-token-file", str(token_file))
    sa = setup.service_account()
    setup.associate("default", sa, cluster="k8s-uri")
    pod = pod_for(setup, sa)
    before = kube.create_token("default", sa, pod=pod)
    setup.node.assume_role_for_pod_identity(clusterName="k8s-uri", token=before)
    setup.node.assume_role_for_pod_identity(clusterName=setup.cluster, token=before)
    first_fetch = time.monotonic()

    kube.new_signing_key("sa-2")
    kube.restart_apiserver()
    after = kube.create_token("default", sa, pod=pod)
    assert after.split(".")[0] != before.split(".")[0]  # another kid in the header

    # The inline cluster does not know the new key until refreshed.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        setup.node.assume_role_for_pod_identity(clusterName=setup.cluster, token=after)
    assert code_of(e) == ("InvalidTokenException", 400)
    podid_cli(podid, "cluster", "refresh", "--name", setup.cluster, "--kubeconfig", kube.kubeconfig)
    setup.node.assume_role_for_pod_identity(clusterName=setup.cluster, token=after)
    # Tokens signed by the retired key still verify while the API server lists it.
    setup.node.assume_role_for_pod_identity(clusterName=setup.cluster, token=before)

    # The jwksUri cluster refetches on the unknown kid, once the 30 s rate limit allows.
    deadline = first_fetch + 60
    while True:
        try:
            setup.node.assume_role_for_pod_identity(clusterName="k8s-uri", token=after)
            break
        except botocore.exceptions.ClientError as err:
            assert err.response["Error"]["Code"] == "InvalidTokenException", err.response
            assert time.monotonic() < deadline, "the jwksUri cluster never learned the new key"
            time.sleep(2)
    assert time.monotonic() - first_fetch >= 25, "refetched before the rate limit allowed it"

    # podid republishes the uri cluster's keys to node agents itself: both keys, no redirect.
    with urllib.request.urlopen(f"{podid.endpoint}/podid/public/clusters/k8s-uri/jwks") as r:
        assert r.status == 200
        kids = {k["kid"] for k in json.loads(r.read())["keys"]}
    assert kids == {k["kid"] for k in json.loads(kube.raw("/openid/v1/jwks"))["keys"]}
    assert len(kids) == 2
