"""Fixtures for the Kubernetes suite: one real API server per session, one podid server, and a
podid cluster registered from the API server's kubeconfig."""
import importlib.util
import json
import os
import subprocess
import uuid

import pytest

from kube import KubeApiServer

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "podid_compat", os.path.join(HERE, "..", "python", "conftest.py"))
podid_compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(podid_compat)

PODID_BIN = podid_compat.PODID_BIN
AGENT_COMMAND = podid_compat.AGENT_COMMAND
Server = podid_compat.Server
clean_env = podid_compat.clean_env
ACCOUNT = podid_compat.ACCOUNT


@pytest.fixture(scope="session")
def kube(tmp_path_factory):
    api = KubeApiServer(str(tmp_path_factory.mktemp("kube"))).start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def podid(tmp_path_factory):
    # The test API server is on 127.0.0.1, which jwksUri fetches may not reach by default.
    srv = Server(str(tmp_path_factory.mktemp("podid")),
                 extra_args=["--jwks-allow-network", "127.0.0.1/32"]).start()
    yield srv
    srv.stop()


def podid_cli(server, *args, check=True):
    """The podid CLI against `server`, as its admin; returns (exit code, stdout, stderr)."""
    env = clean_env()
    env.update({"PODID_ENDPOINT": server.endpoint, "AWS_ACCESS_KEY_ID": server.access_key,
                "AWS_SECRET_ACCESS_KEY": server.secret_key, "PODID_OUTPUT": "json"})
    proc = subprocess.run([PODID_BIN, *args], capture_output=True, text=True, env=env, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"podid {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.returncode, proc.stdout, proc.stderr


class Setup:
    """A podid cluster registered from the API server, a role, and a node's credentials."""

    def __init__(self, kube, podid, name):
        self.kube, self.podid, self.cluster = kube, podid, name
        podid_cli(podid, "cluster", "register", "--name", name, "--kubeconfig", kube.kubeconfig)
        iam = podid.client("iam")
        self.role = f"{name}-role"
        iam.create_role(RoleName=self.role, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
        self.role_arn = f"arn:aws:iam::{ACCOUNT}:role/{self.role}"
        user = f"{name}-node"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="node", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["eks-auth:AssumeRoleForPodIdentity",
                                              "eks:ListPodIdentityAssociations"],
                "Resource": "*"}]}))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self.node_key = (key["AccessKeyId"], key["SecretAccessKey"])
        self.node = podid.client("eks-auth", *self.node_key)

    def associate(self, namespace, service_account, cluster=None):
        return self.podid.client("eks").create_pod_identity_association(
            clusterName=cluster or self.cluster, namespace=namespace,
            serviceAccount=service_account, roleArn=self.role_arn)["association"]

    def service_account(self, namespace="default", associate=True, annotations=None):
        name = "sa-" + uuid.uuid4().hex[:8]
        meta = {"name": name, "namespace": namespace}
        if annotations:
            meta["annotations"] = annotations
        self.kube.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
        if associate:
            self.associate(namespace, name)
        return name


@pytest.fixture(scope="session")
def setup(kube, podid):
    return Setup(kube, podid, "k8s")
