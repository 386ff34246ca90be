"""`podid webhook` over TLS: what docs/webhook.md says it refuses (415, 413, 400 with the reason)
and what it must leave unpatched (other kinds, operations, subresources), next to a control pod
that is patched, so the unpatched cases cannot pass vacuously."""
import copy
import json

import pytest

import helpers as h


def review(**request_overrides):
    r = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default", "operation": "CREATE", "userInfo": {"username": "admin"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"serviceAccountName": "app", "containers": [{"name": "c", "image": "busybox"}]}},
            "oldObject": None,
        },
    }
    r["request"].update(request_overrides)
    return r


def post(webhook, body, content_type="application/json"):
    headers = [("Content-Type", content_type)] if content_type else []
    status, headers, data = h.https(webhook, "POST", "/mutate", body, headers)
    return status, data


def test_control_pod_is_patched(webhook):
    status, data = post(webhook, json.dumps(review()).encode())
    assert status == 200
    response = json.loads(data)["response"]
    assert (response["uid"], response["allowed"], response["patchType"]) == ("uid-1", True, "JSONPatch")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx", None])
def test_wrong_content_type(webhook, content_type):
    status, data = post(webhook, json.dumps(review()).encode(), content_type)
    assert (status, data.decode()) == (415, "Invalid Content-Type, expected `application/json`")


def test_oversized_review(webhook):
    status, data = post(webhook, b" " * (3 * 1024 * 1024 + 1))
    assert (status, data.decode()) == (413, "the review is larger than 3145728 bytes or was cut off")


def test_malformed_json(webhook):
    status, data = post(webhook, b'{"kind":')
    assert (status, data.decode()) == (
        400, "the body is not an AdmissionReview: EOF while parsing a value at line 1 column 8")


@pytest.mark.parametrize("api_version,kind", [("admission.k8s.io/v2", "AdmissionReview"),
                                              ("admission.k8s.io/v1", "Pod")])
def test_not_an_admission_review(webhook, api_version, kind):
    body = review()
    body.update(apiVersion=api_version, kind=kind)
    status, data = post(webhook, json.dumps(body).encode())
    assert (status, data.decode()) == (
        400, f'AdmissionReview apiVersion "{api_version}" kind "{kind}" is not supported '
             "(want admission.k8s.io/v1 AdmissionReview)")


def test_review_without_request(webhook):
    status, data = post(webhook, json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode())
    assert (status, data.decode()) == (400, "the AdmissionReview has no request")


def unpatched(webhook, body):
    status, data = post(webhook, json.dumps(body).encode())
    assert status == 200, data
    return json.loads(data)["response"]


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE", "CONNECT"])
def test_other_operations_are_left_alone(webhook, operation):
    body = review(operation=operation)
    body["request"]["oldObject"] = copy.deepcopy(body["request"]["object"])
    assert unpatched(webhook, body) == {"uid": "uid-1", "allowed": True}


def test_non_pod_kind_is_left_alone(webhook):
    """A Deployment (or anything not a Pod) shaped like a pod gets no patch."""
    body = review(kind={"group": "apps", "version": "v1", "kind": "Deployment"},
                  resource={"group": "apps", "version": "v1", "resource": "deployments"})
    assert unpatched(webhook, body) == {"uid": "uid-1", "allowed": True}


def test_pod_subresource_is_left_alone(webhook):
    body = review(subResource="ephemeralcontainers")
    assert unpatched(webhook, body) == {"uid": "uid-1", "allowed": True}


def test_get_on_mutate_is_not_a_review(webhook):
    status, _, data = h.https(webhook, "GET", "/mutate")
    assert (status, data) == (405, b"")
