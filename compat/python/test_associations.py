"""The EKS pod identity association API, driven by boto3 and the aws CLI."""
import threading

import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import ACCOUNT, REGION, Server, role_arn


def err(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"].get("Message", "")


def test_create_describe_update_delete_lifecycle(server, cluster):
    eks = server.client("eks")
    created = eks.create_pod_identity_association(
        clusterName=cluster, namespace="default", serviceAccount="my-app",
        roleArn=role_arn(), tags={"team": "platform"},
    )["association"]
    aid = created["associationId"]
    assert aid.startswith("a-") and len(aid) == 19 and aid[2:].isalnum() and aid[2:].islower()
    assert created["associationArn"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/{cluster}/{aid}"
    assert created["tags"] == {"team": "platform"}
    assert created["disableSessionTags"] is False
    assert created["createdAt"] == created["modifiedAt"]

    got = eks.describe_pod_identity_association(clusterName=cluster, associationId=aid)["association"]
    assert got == created

    updated = eks.update_pod_identity_association(
        clusterName=cluster, associationId=aid, roleArn=role_arn("other-role"))["association"]
    assert updated["roleArn"] == role_arn("other-role")
    assert updated["modifiedAt"] >= created["modifiedAt"]
    assert updated["createdAt"] == created["createdAt"]

    deleted = eks.delete_pod_identity_association(clusterName=cluster, associationId=aid)["association"]
    assert deleted["associationId"] == aid
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.describe_pod_identity_association(clusterName=cluster, associationId=aid)
    assert err(e)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.delete_pod_identity_association(clusterName=cluster, associationId=aid)


def test_target_role_external_id_policy_and_session_tags(server, cluster):
    eks = server.client("eks")
    a = eks.create_pod_identity_association(
        clusterName=cluster, namespace="ns", serviceAccount="sa", roleArn=role_arn(),
        targetRoleArn="arn:aws:iam::111122223333:role/target",
    )["association"]
    assert a["targetRoleArn"] == "arn:aws:iam::111122223333:role/target"
    assert len(a["externalId"]) >= 32
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'
    b = eks.update_pod_identity_association(clusterName=cluster, associationId=a["associationId"],
                                            disableSessionTags=True, policy=policy)["association"]
    assert b["disableSessionTags"] is True and b["policy"] == policy
    assert b["externalId"] == a["externalId"], "external id stays while a target role remains"
    c = eks.update_pod_identity_association(clusterName=cluster, associationId=a["associationId"],
                                            targetRoleArn="")["association"]
    assert "targetRoleArn" not in c and "externalId" not in c


def test_policy_requires_disabled_session_tags(server, cluster):
    eks = server.client("eks")
    with pytest.raises(eks.exceptions.InvalidParameterException) as e:
        eks.create_pod_identity_association(
            clusterName=cluster, namespace="ns", serviceAccount="sa", roleArn=role_arn(),
            policy='{"Version":"2012-10-17","Statement":[]}')
    code, status, message = err(e)
    assert status == 400 and "policy" in message


def test_list_pagination_over_250_and_filters(server, cluster):
    eks = server.client("eks")
    ids = set()
    for i in range(250):
        ns = "alpha" if i % 2 == 0 else "beta"
        ids.add(eks.create_pod_identity_association(
            clusterName=cluster, namespace=ns, serviceAccount=f"sa-{i}", roleArn=role_arn())["association"]["associationId"])
    seen, token, pages = [], None, 0
    while True:
        kw = {"clusterName": cluster, "maxResults": 100}
        if token:
            kw["nextToken"] = token
        page = eks.list_pod_identity_associations(**kw)
        pages += 1
        seen += [a["associationId"] for a in page["associations"]]
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 250 and set(seen) == ids
    # The paginator and the default page size agree.
    paginated = [a for p in eks.get_paginator("list_pod_identity_associations").paginate(clusterName=cluster)
                 for a in p["associations"]]
    assert len(paginated) == 250
    summary = paginated[0]
    assert set(summary) == {"clusterName", "namespace", "serviceAccount", "associationArn", "associationId"}
    alpha = [a for p in eks.get_paginator("list_pod_identity_associations").paginate(
        clusterName=cluster, namespace="alpha", PaginationConfig={"PageSize": 7}) for a in p["associations"]]
    assert len(alpha) == 125 and all(a["namespace"] == "alpha" for a in alpha)
    one = eks.list_pod_identity_associations(clusterName=cluster, namespace="beta", serviceAccount="sa-1")
    assert [a["serviceAccount"] for a in one["associations"]] == ["sa-1"]
    only_sa = eks.list_pod_identity_associations(clusterName=cluster, serviceAccount="sa-2")
    assert len(only_sa["associations"]) == 1


def test_pagination_stays_correct_under_concurrent_writes(server, cluster):
    eks = server.client("eks")
    stable = {eks.create_pod_identity_association(clusterName=cluster, namespace="n", serviceAccount=f"s{i}",
                                                  roleArn=role_arn())["association"]["associationId"] for i in range(60)}
    page = eks.list_pod_identity_associations(clusterName=cluster, maxResults=20)
    seen = [a["associationId"] for a in page["associations"]]
    # Writes between pages: new associations, and a deletion of one already returned.
    for i in range(30):
        eks.create_pod_identity_association(clusterName=cluster, namespace="m", serviceAccount=f"x{i}", roleArn=role_arn())
    eks.delete_pod_identity_association(clusterName=cluster, associationId=seen[0])
    token = page["nextToken"]
    while token:
        page = eks.list_pod_identity_associations(clusterName=cluster, maxResults=20, nextToken=token)
        seen += [a["associationId"] for a in page["associations"]]
        token = page.get("nextToken")
    assert len(seen) == len(set(seen)), "no association is returned twice"
    assert stable <= set(seen), "every association that existed throughout is returned"


def test_idempotency_tokens(server, cluster):
    eks = server.client("eks")
    kw = dict(clusterName=cluster, namespace="ns", serviceAccount="idem", roleArn=role_arn(), clientRequestToken="tok-1")
    first = eks.create_pod_identity_association(**kw)["association"]
    again = eks.create_pod_identity_association(**kw)["association"]
    assert again == first
    with pytest.raises(eks.exceptions.InvalidRequestException):
        eks.create_pod_identity_association(**{**kw, "roleArn": role_arn("different")})
    u = dict(clusterName=cluster, associationId=first["associationId"], roleArn=role_arn("r2"), clientRequestToken="upd-1")
    u1 = eks.update_pod_identity_association(**u)["association"]
    u2 = eks.update_pod_identity_association(**u)["association"]
    assert u1 == u2
    with pytest.raises(eks.exceptions.InvalidRequestException):
        eks.update_pod_identity_association(**{**u, "roleArn": role_arn("r3")})


def test_concurrent_creates_for_one_service_account_yield_one_association(server, cluster):
    eks = server.client("eks")
    results = []

    def create():
        try:
            results.append(eks.create_pod_identity_association(
                clusterName=cluster, namespace="race", serviceAccount="sa", roleArn=role_arn())["association"]["associationId"])
        except botocore.exceptions.ClientError as e:
            results.append(e.response["Error"]["Code"])

    threads = [threading.Thread(target=create) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    created = [r for r in results if r.startswith("a-")]
    assert len(created) == 1 and results.count("ResourceInUseException") == 7


@pytest.mark.parametrize("kwargs,code,field", [
    (dict(namespace="Bad_NS"), "InvalidParameterException", "namespace"),
    (dict(namespace="a" * 64), "InvalidParameterException", "namespace"),
    (dict(serviceAccount="bad..sa"), "InvalidParameterException", "serviceAccount"),
    (dict(serviceAccount="x" * 254), "InvalidParameterException", "serviceAccount"),
    (dict(roleArn="arn:aws:iam::000000000000:user/bob"), "InvalidParameterException", "roleArn"),
    (dict(roleArn="not-an-arn"), "InvalidParameterException", "roleArn"),
    (dict(roleArn="arn:aws:iam::999999999999:role/other-account"), "InvalidParameterException", "roleArn"),
    (dict(targetRoleArn="arn:aws:s3:::bucket"), "InvalidParameterException", "targetRoleArn"),
    (dict(tags={"k" * 129: "v"}), "InvalidParameterException", "tags"),
    (dict(tags={"k": "v" * 257}), "InvalidParameterException", "tags"),
    (dict(tags={f"k{i}": "v" for i in range(51)}), "InvalidParameterException", "tags"),
    (dict(disableSessionTags=True, policy="not json"), "InvalidParameterException", "policy"),
])
def test_validation_errors_name_the_field(server, cluster, kwargs, code, field):
    # Skip botocore's own client-side validation so the server's answer is what is tested.
    eks = server.client("eks", config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    params = dict(clusterName=cluster, namespace="ns", serviceAccount="sa", roleArn=role_arn())
    params.update(kwargs)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eks.create_pod_identity_association(**params)
    got_code, status, message = err(e)
    assert (got_code, status) == (code, 400)
    assert field in message
    assert eks.list_pod_identity_associations(clusterName=cluster)["associations"] == [], "nothing half-written"


def test_not_found_in_use_and_limit(server, cluster, tmp_path):
    eks = server.client("eks")
    with pytest.raises(eks.exceptions.ResourceNotFoundException) as e:
        eks.list_pod_identity_associations(clusterName="no-such-cluster")
    assert err(e)[1] == 404
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.create_pod_identity_association(clusterName="no-such-cluster", namespace="n", serviceAccount="s", roleArn=role_arn())
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_pod_identity_association(clusterName=cluster, associationId="a-00000000000000000")
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_pod_identity_association(clusterName=cluster, associationId="us-west-2:not-an-id")
    eks.create_pod_identity_association(clusterName=cluster, namespace="n", serviceAccount="s", roleArn=role_arn())
    with pytest.raises(eks.exceptions.ResourceInUseException) as e:
        eks.create_pod_identity_association(clusterName=cluster, namespace="n", serviceAccount="s", roleArn=role_arn("x"))
    assert err(e)[1] == 409

    small = Server(str(tmp_path / "small"), ["--max-associations-per-cluster", "2"]).start()
    try:
        small.register_cluster("tiny")
        seks = small.client("eks")
        for i in range(2):
            seks.create_pod_identity_association(clusterName="tiny", namespace="n", serviceAccount=f"s{i}", roleArn=role_arn())
        with pytest.raises(seks.exceptions.ResourceLimitExceededException) as e:
            seks.create_pod_identity_association(clusterName="tiny", namespace="n", serviceAccount="s9", roleArn=role_arn())
        assert err(e)[1] == 400
    finally:
        small.stop()


@pytest.mark.parametrize("max_results", [0, 101])
def test_bad_list_parameters(server, cluster, max_results):
    # botocore validates maxResults client-side too; turn that off so the server's answer is tested.
    eks2 = server.client("eks", config=Config(parameter_validation=False, retries={"max_attempts": 1}))
    with pytest.raises(eks2.exceptions.InvalidParameterException):
        eks2.list_pod_identity_associations(clusterName=cluster, maxResults=max_results)


def test_bad_next_token(server, cluster):
    eks = server.client("eks")
    with pytest.raises(eks.exceptions.InvalidParameterException):
        eks.list_pod_identity_associations(clusterName=cluster, nextToken="garbage!!")


def test_clusters_list_and_describe(server, cluster):
    eks = server.client("eks")
    names = [n for p in eks.get_paginator("list_clusters").paginate() for n in p["clusters"]]
    assert cluster in names
    c = eks.describe_cluster(name=cluster)["cluster"]
    assert c["status"] == "ACTIVE" and c["arn"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}"
    assert c["identity"]["oidc"]["issuer"] == "https://issuer.example/"
    assert c["createdAt"]
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_cluster(name="missing")


def test_cluster_delete_refused_while_associations_exist(server, cluster):
    eks = server.client("eks")
    a = eks.create_pod_identity_association(clusterName=cluster, namespace="n", serviceAccount="s", roleArn=role_arn())["association"]
    status, body = server.admin("DELETE", f"/podid/v1/clusters/{cluster}")
    assert status == 409 and "association" in body["message"]
    eks.delete_pod_identity_association(clusterName=cluster, associationId=a["associationId"])
    status, _ = server.admin("DELETE", f"/podid/v1/clusters/{cluster}")
    assert status == 200


def test_aws_cli_lifecycle(server, cluster):
    _, out, _ = server.aws("eks", "create-pod-identity-association", "--cluster-name", cluster,
                           "--namespace", "default", "--service-account", "my-app", "--role-arn", role_arn(),
                           "--tags", "env=dev")
    aid = out["association"]["associationId"]
    _, out, _ = server.aws("eks", "list-pod-identity-associations", "--cluster-name", cluster)
    assert [a["associationId"] for a in out["associations"]] == [aid]
    _, out, _ = server.aws("eks", "describe-pod-identity-association", "--cluster-name", cluster, "--association-id", aid)
    assert out["association"]["tags"] == {"env": "dev"}
    _, out, _ = server.aws("eks", "update-pod-identity-association", "--cluster-name", cluster, "--association-id", aid,
                           "--role-arn", role_arn("new-role"))
    assert out["association"]["roleArn"] == role_arn("new-role")
    code, _, stderr = server.aws("eks", "create-pod-identity-association", "--cluster-name", cluster,
                                 "--namespace", "default", "--service-account", "my-app", "--role-arn", role_arn(), check=False)
    assert code != 0 and "ResourceInUseException" in stderr
    server.aws("eks", "delete-pod-identity-association", "--cluster-name", cluster, "--association-id", aid)
    code, _, stderr = server.aws("eks", "describe-pod-identity-association", "--cluster-name", cluster,
                                 "--association-id", aid, check=False)
    assert code != 0 and "ResourceNotFoundException" in stderr


def test_everything_acknowledged_survives_kill_9(fresh_server):
    fresh_server.register_cluster("durable")
    eks = fresh_server.client("eks")
    ids = [eks.create_pod_identity_association(clusterName="durable", namespace="n", serviceAccount=f"s{i}",
                                               roleArn=role_arn())["association"]["associationId"] for i in range(40)]
    eks.delete_pod_identity_association(clusterName="durable", associationId=ids[0])
    fresh_server.kill9()
    fresh_server.start()
    eks = fresh_server.client("eks")
    listed = [a["associationId"] for p in eks.get_paginator("list_pod_identity_associations").paginate(clusterName="durable")
              for a in p["associations"]]
    assert sorted(listed) == sorted(ids[1:])
    a = eks.describe_pod_identity_association(clusterName="durable", associationId=ids[1])["association"]
    assert a["serviceAccount"] == "s1"


def test_pass_role_is_needed_on_the_role_and_not_on_the_target_role(server, cluster):
    """EKS passes the association's role to pods.eks.amazonaws.com, so the caller needs
    iam:PassRole on it (with iam:PassedToService matching); the target role is assumed by that
    role at credential time and is not passed, so it needs no PassRole (it may be in another
    account, where PassRole could not be granted at all)."""
    import json
    import uuid
    iam = server.client("iam")
    user = "assoc-admin-" + uuid.uuid4().hex[:6]
    allowed_role = role_arn("passable-" + uuid.uuid4().hex[:6])
    other_role = role_arn("not-passable-" + uuid.uuid4().hex[:6])
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["eks:CreatePodIdentityAssociation",
                                           "eks:UpdatePodIdentityAssociation"], "Resource": "*"},
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": allowed_role,
             "Condition": {"StringEquals": {"iam:PassedToService": "pods.eks.amazonaws.com"}}},
        ]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    eks = server.client("eks", key["AccessKeyId"], key["SecretAccessKey"])

    made = eks.create_pod_identity_association(
        clusterName=cluster, namespace="default", serviceAccount="with-target",
        roleArn=allowed_role, targetRoleArn="arn:aws:iam::111122223333:role/elsewhere")["association"]
    assert made["targetRoleArn"] == "arn:aws:iam::111122223333:role/elsewhere"
    # The target role changes without PassRole too.
    eks.update_pod_identity_association(
        clusterName=cluster, associationId=made["associationId"],
        targetRoleArn=other_role)

    for call in (
        lambda: eks.create_pod_identity_association(
            clusterName=cluster, namespace="default", serviceAccount="no-pass", roleArn=other_role),
        lambda: eks.update_pod_identity_association(
            clusterName=cluster, associationId=made["associationId"], roleArn=other_role),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            call()
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "iam:PassRole" in denied.value.response["Error"]["Message"]
