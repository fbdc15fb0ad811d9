"""`agent-assist k8s-secrets`, the command the Job in deploy/k8s/secrets.yaml runs so that the
manifests start secure with no extra step: run as a real process with the official Kubernetes
client against a local HTTPS server that answers the Secret endpoints the way the API server does
(bearer token, 404 / 409 / 403 Status objects, `stringData` stored base64 in `data`); no cluster
or container engine runs here. It creates what is missing, keeps what exists (an operator's own
values, a second run, a race), never prints a value, and what it makes works: the ingest key
parses and a real redis-server loads the users with their passwords. The Job's RBAC reaches no
further than the two Secrets' names (plus create)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import ssl
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from aiohttp import web
from redis.asyncio import Redis

from agent_assist.cli import build_parser
from agent_assist.embedded_redis import EmbeddedRedis
from agent_assist.k8s_secrets import APP_SECRETS, REDIS_USERS
from gateway.calls import parse_ingest_keys

ROOT = Path(__file__).resolve().parent.parent
JOB = ROOT / "deploy" / "k8s" / "secrets.yaml"
BIN = Path(sys.executable).parent
NAMESPACE = "calls"


def status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip
    return web.json_response(body, status=code)


@dataclass
class ApiServer:
    """The Secret endpoints of a namespace, as the API server answers them."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    late: dict[str, dict[str, Any]] = field(default_factory=dict)  # appear between GET and POST
    calls: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth])
        base = "/api/v1/namespaces/{ns}/secrets"
        app.router.add_get(base + "/{name}", self.read)
        app.router.add_post(base, self.create)
        return app

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.calls.append(f"{request.method} {request.path}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        if request.match_info.get("ns") != NAMESPACE:
            return status(403, "Forbidden", "not this namespace")
        return await handler(request)

    async def read(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.forbidden:
            return status(403, "Forbidden", f'secrets "{name}" is forbidden')
        if name not in self.stored:
            return status(404, "NotFound", f'secrets "{name}" not found')
        return web.json_response(self.stored[name])

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body["metadata"]["name"]
        if name in self.late:
            self.stored[name] = self.late.pop(name)
        if name in self.stored:
            return status(409, "AlreadyExists", f'secrets "{name}" already exists')
        data = {k: base64.b64encode(v.encode()).decode() for k, v in body["stringData"].items()}
        self.stored[name] = {"kind": "Secret", "apiVersion": "v1", "type": body["type"],
                             "metadata": body["metadata"] | {"namespace": NAMESPACE},
                             "data": data}  # fmt: skip
        return web.json_response(self.stored[name], status=201)

    def value(self, name: str, key: str) -> str:
        return base64.b64decode(self.stored[name]["data"][key]).decode()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def api(ca: trustme.CA, tmp_path: Path) -> AsyncIterator[tuple[ApiServer, Path]]:
    server = ApiServer()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(kubeconfig_text(ca, f"https://127.0.0.1:{port}", server.token))
    try:
        yield server, kubeconfig
    finally:
        await runner.cleanup()


def kubeconfig_text(ca: trustme.CA, url: str, token: str) -> str:
    pem = base64.b64encode(ca.cert_pem.bytes()).decode()
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": url,
                                                 "certificate-authority-data": pem}}],
        "users": [{"name": "job", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "job"}}],
    })  # fmt: skip


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


async def run(kubeconfig: Path, *extra: str) -> Run:
    proc = await asyncio.create_subprocess_exec(
        BIN / "agent-assist", "k8s-secrets", f"--kubeconfig={kubeconfig}",
        f"--namespace={NAMESPACE}", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def all_values(server: ApiServer) -> list[str]:
    return [server.value(n, k) for n, s in server.stored.items() for k in s["data"]]


async def test_makes_both_secrets_once_and_never_prints_them(api):
    server, kubeconfig = api
    first = await run(kubeconfig)
    assert first.code == 0, first.err
    assert first.out.splitlines() == [
        f"created Secret {NAMESPACE}/{APP_SECRETS}",
        f"created Secret {NAMESPACE}/{REDIS_USERS}",
    ]
    made = {name: dict(s["data"]) for name, s in server.stored.items()}
    assert set(made[APP_SECRETS]) == {"AGENT_ASSIST_INGEST_KEYS", "AGENT_ASSIST_PANEL_SECRET"}
    assert set(made[REDIS_USERS]) == {"users.acl", "gateway.url", "worker.url", "panel.url"}
    for value in all_values(server):
        assert value.strip() not in first.out + first.err
        for line in value.splitlines():
            for word in line.replace("@", " ").replace(":", " ").split():
                if len(word) >= 32:  # no password or key, not even inside a URL
                    assert word not in first.out + first.err

    again = await run(kubeconfig)
    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        f"kept Secret {NAMESPACE}/{APP_SECRETS}",
        f"kept Secret {NAMESPACE}/{REDIS_USERS}",
    ]
    assert {name: dict(s["data"]) for name, s in server.stored.items()} == made
    assert not any(c.startswith("POST") for c in server.calls[-2:])


async def test_what_it_makes_works(api):
    server, kubeconfig = api
    assert (await run(kubeconfig, "--tenant=acme", "--prefix=cc")).code == 0
    (key,) = parse_ingest_keys(server.value(APP_SECRETS, "AGENT_ASSIST_INGEST_KEYS"))
    assert key.tenant == "acme" and len(key.secret) >= 32
    assert len(server.value(APP_SECRETS, "AGENT_ASSIST_PANEL_SECRET")) >= 32
    users = EmbeddedRedis(users=server.value(REDIS_USERS, "users.acl")).start()
    try:
        for role in ("gateway", "worker", "panel"):
            url = server.value(REDIS_USERS, f"{role}.url")
            assert url.startswith(f"redis://{role}:") and "@agent-assist-redis:6379/0" in url
            local = url.replace("@agent-assist-redis:6379", f"@127.0.0.1:{users.port}")
            client = Redis.from_url(local)
            try:
                assert await client.ping()  # AUTH as the role, with its password
            finally:
                await client.aclose()
        anonymous = Redis(port=users.port)
        try:
            with pytest.raises(Exception, match=r"(?i)auth|permission"):
                await anonymous.get("cc:call:x")
        finally:
            await anonymous.aclose()
    finally:
        users.stop()
    assert "~cc:*" in server.value(REDIS_USERS, "users.acl")


async def test_keeps_an_operators_own_secret_and_a_racing_ones(api):
    server, kubeconfig = api
    mine = {"AGENT_ASSIST_INGEST_KEYS": base64.b64encode(b"acme:" + b"k" * 40).decode()}
    server.stored[APP_SECRETS] = {"kind": "Secret", "metadata": {"name": APP_SECRETS},
                                  "data": mine}  # fmt: skip
    server.late[REDIS_USERS] = {"kind": "Secret", "metadata": {"name": REDIS_USERS},
                                "data": {"users.acl": "eA=="}}  # fmt: skip
    result = await run(kubeconfig)
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"kept Secret {NAMESPACE}/{APP_SECRETS}",
        f"kept Secret {NAMESPACE}/{REDIS_USERS}",
    ]
    assert server.stored[APP_SECRETS]["data"] == mine
    assert server.stored[REDIS_USERS]["data"] == {"users.acl": "eA=="}


async def test_refusals_are_one_clear_line(api, tmp_path, ca):
    server, kubeconfig = api
    server.forbidden.add(REDIS_USERS)
    result = await run(kubeconfig)
    assert result.code == 1
    assert result.err.strip() == "agent-assist: the Kubernetes API answered 403 Forbidden"
    wrong = tmp_path / "wrong"
    wrong.write_text(kubeconfig.read_text().replace(server.token, "not-the-token"))
    result = await run(wrong)
    assert (result.code, result.err.strip()) == (
        1, "agent-assist: the Kubernetes API answered 401 Unauthorized"
    )  # fmt: skip
    assert "Traceback" not in result.err
    nowhere = tmp_path / "nowhere"
    nowhere.write_text(kubeconfig_text(ca, "https://127.0.0.1:9", server.token))
    result = await run(nowhere)
    assert result.code == 1 and result.err.startswith("agent-assist: no Kubernetes API")
    assert "Traceback" not in result.err


def test_the_job_runs_the_command_with_a_service_account_that_reaches_only_its_secrets():
    docs = {d["kind"]: d for d in yaml.safe_load_all(JOB.read_text()) if d}
    pod = docs["Job"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "k8s-secrets" and args.kubeconfig is None
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    binding = docs["RoleBinding"]
    assert binding["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": docs["ServiceAccount"]["metadata"]["name"]}
    ]
    rules = docs["Role"]["rules"]
    assert all(r["resources"] == ["secrets"] and r["apiGroups"] == [""] for r in rules)
    reads = [r for r in rules if set(r["verbs"]) & {"get", "list", "watch", "update", "patch"}]
    assert all(r["verbs"] == ["get"] for r in reads)
    assert {n for r in reads for n in r["resourceNames"]} == {APP_SECRETS, REDIS_USERS}
    assert [r["verbs"] for r in rules if "resourceNames" not in r] == [["create"]]
    # the Secret's keys are those the other manifests read
    k8s = JOB.parent
    text = "".join((k8s / f).read_text() for f in ("gateway.yaml", "worker.yaml", "redis.yaml"))
    for key in ("gateway.url", "panel.url", "worker.url", "users.acl"):
        assert f"key: {key}" in text
    assert f"name: {APP_SECRETS}" in text
    # and no other pod holds an API token
    for doc in yaml.safe_load_all(text):
        if doc and doc["kind"] == "Deployment":
            assert doc["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
