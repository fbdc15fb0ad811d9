"""The Secrets `deploy/k8s` needs, made in the cluster when they are missing, so that the manifests
start secure with no extra step (`agent-assist k8s-secrets`, run by the Job in
`deploy/k8s/secrets.yaml`):

- `agent-assist-secrets`: `AGENT_ASSIST_INGEST_KEYS` (one random key for the tenant `default`) and
  `AGENT_ASSIST_PANEL_SECRET` (the panels' shared signing secret);
- `agent-assist-redis-users`: what `agent-assist redis-users` writes (users.acl and each role's
  URL), with random passwords.

A Secret that already exists is kept as it is, whoever made it (an operator's own keys, an
earlier run): the command creates, never updates, so running it again or from two places at once
changes nothing. It prints which Secrets it made or kept, never a value; the values are read where
they are kept (`kubectl get secret ... -o jsonpath=...`). It talks to the API with the official
client, as the pod's service account (in the cluster) or from a kubeconfig (outside it).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from urllib3.exceptions import HTTPError as Unreachable

from gateway.calls import IngestKey
from pipeline.bus import acl

__all__ = [
    "ApiException",
    "ConfigException",
    "Outcome",
    "Unreachable",
    "Wanted",
    "connect",
    "ensure",
    "wanted",
]

APP_SECRETS = "agent-assist-secrets"
REDIS_USERS = "agent-assist-redis-users"
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_LABELS = {
    "app.kubernetes.io/part-of": "agent-assist",
    "app.kubernetes.io/managed-by": "agent-assist",
}


class Outcome(enum.Enum):
    CREATED = "created"
    KEPT = "kept"  # it was there already (or another run made it a moment before)


@dataclass(frozen=True)
class Wanted:
    """A Secret to have: its name and how to make its data (called only when it is missing)."""

    name: str
    make: Callable[[], Mapping[str, str]]


def wanted(tenant: str, prefix: str, redis_host: str, redis_port: int) -> list[Wanted]:
    def app() -> dict[str, str]:
        return {
            "AGENT_ASSIST_INGEST_KEYS": IngestKey(tenant, secrets.token_urlsafe(32)).text(),
            "AGENT_ASSIST_PANEL_SECRET": secrets.token_urlsafe(48),
        }

    def users() -> dict[str, str]:
        made = acl.passwords()
        urls = acl.urls(made, redis_host, redis_port, tls=False)
        return {"users.acl": acl.users_acl(prefix, made)} | {
            f"{role}.url": url for role, url in urls.items()
        }

    return [Wanted(APP_SECRETS, app), Wanted(REDIS_USERS, users)]


def connect(kubeconfig: Path | None) -> client.CoreV1Api:
    """The API as this pod's service account, or as the kubeconfig's current context."""
    if kubeconfig is None:
        config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped in the client
    else:
        config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return client.CoreV1Api()


def ensure(api: client.CoreV1Api, namespace: str, secrets_: list[Wanted]) -> dict[str, Outcome]:
    """Creates each missing Secret; `ApiException` for anything but "already there"."""
    done = {}
    for want in secrets_:
        try:
            api.read_namespaced_secret(want.name, namespace)
            done[want.name] = Outcome.KEPT
            continue
        except ApiException as exc:
            if exc.status != 404:
                raise
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(name=want.name, labels=_LABELS),
            type="Opaque",
            string_data=dict(want.make()),
        )
        try:
            api.create_namespaced_secret(namespace, body)
            done[want.name] = Outcome.CREATED
        except ApiException as exc:
            if exc.status != 409:  # 409: made by another run since we looked
                raise
            done[want.name] = Outcome.KEPT
    return done


def refusal(exc: ApiException) -> str:
    """What the API said, for a person: its status and reason, never a request body."""
    return f"the Kubernetes API answered {exc.status} {exc.reason}"
