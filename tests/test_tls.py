"""TLS on the gateway and the panels (`--tls-cert`/`--tls-key`), with certificates from a local
CA (`trustme`): a call streams over wss://, the panels answer over https:// and their session
cookie is Secure, and a client that does not trust the certificate gets nowhere. Redis over TLS
(`rediss://`, `--redis-ca/--redis-cert/--redis-key`) against a real TLS redis-server with the
ACL users."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import trustme
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError
from websockets.asyncio.client import connect as ws_connect

from agent_assist.embedded_redis import EmbeddedRedis, ServerTls
from agent_assist.settings import Settings
from coach_ui.auth import Role
from coach_ui.server import PanelServer
from gateway.server import Gateway
from loadtest.clients import LOCAL
from pipeline.bus import acl
from pipeline.bus.client import RedisTls, connect
from pipeline.session import Stages


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ssl.SSLContext]:
    """The server's chain and key (in a folder that also holds ca.pem, and a client's
    certificate, client.pem and client-key.pem), and a client context that trusts the CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    chain, key = folder / "chain.pem", folder / "key.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key.write_bytes(cert.private_key_pem.bytes())
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    client_cert = ca.issue_cert("agent-assist-gateway")
    (folder / "client.pem").write_bytes(client_cert.cert_chain_pems[0].bytes())
    (folder / "client-key.pem").write_bytes(client_cert.private_key_pem.bytes())
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return chain, key, client


def redis_with_tls(folder: Path) -> str:
    """Debian's redis-server build, which has TLS (the embedded one has not): redis-tools ships
    it as redis-check-rdb, the same binary, which is the server under the name redis-server."""
    binary = Path("/usr/bin/redis-check-rdb")
    assert binary.exists(), "apt-get install redis-tools (make test does)"
    (folder / "redis-server").symlink_to(binary)
    return str(folder / "redis-server")


async def test_redis_over_tls_with_acl_users_verifies_both_sides(certs, tmp_path):
    """A real redis-server on TLS only, with client certificates required and the ACL users:
    each role connects over rediss:// with `--redis-ca/--redis-cert/--redis-key` and keeps to
    its part; a client that does not trust the server, or shows no certificate, or speaks plain
    redis://, gets nowhere."""
    chain, key, _ = certs
    folder = chain.parent
    ca, cert, cert_key = folder / "ca.pem", folder / "client.pem", folder / "client-key.pem"
    passwords = acl.passwords()
    server = EmbeddedRedis(
        redis_with_tls(tmp_path),
        users=acl.users_acl("aa", passwords),
        tls=ServerTls(chain, key, ca, clients=True),
    ).start()
    try:
        urls = acl.urls(passwords, "127.0.0.1", server.port, tls=True)
        settings = Settings(
            redis_url=urls["gateway"],
            redis_ca=str(ca),
            redis_cert=str(cert),
            redis_key=str(cert_key),
        )
        gateway = connect(urls["gateway"], tls=settings.redis_tls())
        panel = connect(urls["panel"], tls=settings.redis_tls())
        await gateway.set("aa:tls-check", "over tls")
        assert await panel.get("aa:tls-check") == "over tls"
        with pytest.raises(NoPermissionError):
            await panel.publish("aa:events", "{}")
        for client in (gateway, panel):
            await client.aclose()
        refused: list[tuple[str, RedisTls | None, str | None]] = [
            (urls["gateway"], RedisTls(cert=str(cert), key=str(cert_key)), "verify failed"),
            (urls["gateway"], RedisTls(ca=str(ca)), None),  # no client certificate
            (urls["gateway"].replace("rediss://", "redis://"), None, None),  # no TLS at all
        ]
        for url, tls, why in refused:
            client = connect(url, tls=tls)
            with pytest.raises(RedisConnectionError, match=why):
                await client.ping()
            await client.aclose()
    finally:
        server.stop()


async def test_a_call_streams_over_wss_and_an_untrusting_client_is_refused(service, certs):
    chain, key, client = certs
    settings = Settings(port=0, tls_cert=chain, tls_key=key, **LOCAL.settings())
    s = service.settings
    gateway = Gateway(settings.gateway(), service.bus, Stages(service.owner, s.vad(), s.stream()))
    await gateway.start()
    try:
        assert gateway.url.startswith("wss://")
        start = {"type": "start", "call_id": "tls-call", "sample_rate": 8000, "encoding": "pcm16"}
        async with ws_connect(gateway.url, ssl=client, additional_headers=LOCAL.bearer()) as ws:
            await ws.send(json.dumps(start))
            assert json.loads(await ws.recv())["type"] == "started"
            await ws.send(bytes(3200))
            await ws.send(json.dumps({"type": "stop"}))
            stopped = [json.loads(m) async for m in ws][-1]
        assert stopped["type"] == "stopped" and stopped["duration"] == pytest.approx(
            0.1
        )  # 800 stereo frames
        with pytest.raises(ssl.SSLCertVerificationError):
            async with ws_connect(gateway.url, ssl=ssl.create_default_context()):
                pass
    finally:
        await gateway.stop()


async def test_the_panels_over_https_set_a_secure_cookie(service, keys, certs):
    chain, key, client = certs
    settings = Settings(panel_port=0, tls_cert=chain, tls_key=key, panel_secret="x" * 40)
    panels = PanelServer(settings.panel(), service.bus.redis, keys)
    await panels.start()
    try:
        assert panels.base.startswith("https://")
        token = panels.mint("sup", Role.SUPERVISOR)
        form = urllib.parse.urlencode({"token": token}).encode()

        def login() -> tuple[int, str]:
            opener = urllib.request.build_opener(
                urllib.request.HTTPSHandler(context=client), _NoRedirect
            )
            try:
                with opener.open(f"{panels.base}/login", data=form, timeout=10) as r:
                    return r.status, r.headers.get("Set-Cookie", "")
            except urllib.error.HTTPError as err:
                return err.code, err.headers.get("Set-Cookie", "")

        status, cookie = await asyncio.to_thread(login)
        assert status == 303 and "Secure" in cookie and "HttpOnly" in cookie
    finally:
        await panels.stop()


def test_a_certificate_without_its_key_is_a_clear_error(certs):
    chain, _, _ = certs
    with pytest.raises(ValueError, match="--tls-cert and --tls-key go together"):
        Settings(tls_cert=chain).gateway()
    with pytest.raises(ValueError, match="--tls-cert/--tls-key"):
        Settings(tls_cert=chain, tls_key=chain).gateway()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None
