"""Redis ACL users per role (`pipeline.bus.acl`) on a real redis-server loaded with the ACL file
`agent-assist redis-users` writes: each role does its whole part with its own user (the gateway's
bus, job client and wall-board publisher; a worker; the panels, read-only) and nothing more: the
panel user cannot publish or write, the worker cannot write outside the job and result streams,
none may run the dangerous commands. Redis's own ACL LOG shows no denial during the real work."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import numpy as np
import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError
from websockets.asyncio.client import connect as ws_connect

from agent_assist.embedded_redis import EmbeddedRedis
from coach_ui.auth import AuthConfig, Role
from coach_ui.server import PanelConfig, PanelServer
from pipeline.bus import acl
from pipeline.bus.client import connect
from pipeline.bus.jobs import JobClient, JobsConfig
from pipeline.bus.redis_bus import BusConfig, Keys, RedisBus, call_state
from pipeline.bus.remote import RemoteAsr
from pipeline.bus.worker import StreamWorker
from pipeline.speech.asr import AsrConfig, AsrResult, ModelOwner, PassKind
from pipeline.types import CallEnded, CallStarted, Channel, TranscriptEvent, Word


@pytest.fixture(scope="module")
def users() -> Iterator[tuple[EmbeddedRedis, dict[str, str]]]:
    passwords = acl.passwords()
    server = EmbeddedRedis(users=acl.users_acl("aa", passwords)).start()
    try:
        yield server, acl.urls(passwords, "127.0.0.1", server.port, tls=False)
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def clients(urls: dict[str, str], decode: bool = True) -> AsyncIterator[dict[str, Redis]]:
    made = {role: connect(url, decode=decode) for role, url in urls.items()}
    try:
        yield made
    finally:
        for client in made.values():
            await client.aclose()


async def denied(call: Callable[[], Any]) -> bool:
    try:
        await call()
    except NoPermissionError:
        return True
    return False


async def test_each_user_may_do_its_part_and_nothing_more(users):
    server, urls = users
    async with clients(urls) as r:
        gateway, worker, panel = r["gateway"], r["worker"], r["panel"]
        await gateway.set("aa:call:c1", "x")
        assert await gateway.publish("aa:events", "{}") >= 0
        assert await panel.get("aa:call:c1") == "x"
        await worker.xadd("aa:results:gw1", {"id": "1"})

        # the panel reader: no publish, no write
        for call in (
            lambda: panel.publish("aa:events", "{}"),
            lambda: panel.publish("aa:wallboard", "{}"),
            lambda: panel.set("aa:call:c1", "forged"),
            lambda: panel.xadd("aa:jobs:final", {"x": "1"}),
            lambda: panel.delete("aa:call:c1"),
        ):
            assert await denied(call)
        # a worker: nothing outside the job and result streams
        for call in (
            lambda: worker.xadd("aa:call:c1", {"x": "1"}),
            lambda: worker.set("aa:call:c1", "forged"),
            lambda: worker.get("aa:call:c1"),
            lambda: worker.publish("aa:events", "{}"),
            lambda: worker.xadd("zz:results:gw1", {"x": "1"}),
        ):
            assert await denied(call)
        # nobody: other prefixes or the dangerous commands
        for client in (gateway, worker, panel):
            for call in (
                lambda c=client: c.get("zz:other"),
                lambda c=client: c.keys("*"),
                lambda c=client: c.flushall(),
                lambda c=client: c.config_get("*"),
            ):
                assert await denied(call)
    admin = connect(server.url)  # the embedded server's own default user
    assert await admin.get("aa:call:c1") == "x"
    await admin.execute_command("ACL", "LOG", "RESET")
    await admin.aclose()


class Counting:
    def __call__(self, audio: np.ndarray, kind: PassKind) -> AsrResult:
        return AsrResult((Word(f"{kind.value}-{len(audio)}", 0.0, 0.5, 0.9),))


async def test_every_role_does_its_real_work_with_its_own_user(users):
    """The gateway's bus and job client, a worker and the panels, each on its own user; the
    ACL LOG (every denied command) stays empty."""
    server, urls = users
    admin = connect(server.url)
    await admin.execute_command("ACL", "LOG", "RESET")
    keys = Keys("aa")
    async with clients(urls) as r, clients(urls, decode=False) as raw:
        # the gateway: a call's life on the bus
        bus = RedisBus(r["gateway"], BusConfig())
        assert await bus.claim("acl-call")
        await bus.call_started(
            CallStarted(
                call_id="acl-call",
                agent_id="a1",
                sample_rate=8000,
                encoding="pcm16",
                protocol="native",
            )
        )
        final = TranscriptEvent(
            call_id="acl-call", channel=Channel.CUSTOMER, utterance=1, start=0.0, end=1.0,
            text="hello", final=True, seq=1,
        )  # fmt: skip
        await bus.publish(final, "a1")
        # models behind Redis Streams: the gateway's job client, a worker of its own user
        config = JobsConfig(claim_idle_s=1.0)
        owner = ModelOwner(Counting(), AsrConfig(workers=1))
        client = JobClient(raw["gateway"], config)
        await client.start()
        stop = asyncio.Event()
        worker = asyncio.create_task(
            StreamWorker(raw["worker"], config, "w1", owner, None).run(stop)
        )
        result = await RemoteAsr(client).transcribe(PassKind.FINAL, ("acl-call", "customer"),
                                                    np.zeros(1600, np.float32))  # fmt: skip
        assert result is not None and result.text == "final-1600"
        stop.set()
        await worker
        await client.close()
        owner.close()
        # the panels read with the read-only user; the board goes out through the gateway's
        panels = PanelServer(
            PanelConfig(port=0, auth=AuthConfig(secret="s" * 40), board_interval_s=0.2),
            r["panel"],
            keys,
            board_redis=r["gateway"],
        )
        await panels.start()
        try:
            token = panels.mint("sup", Role.SUPERVISOR)
            ws = panels.base.replace("http", "ws")
            auth = {"Authorization": f"Bearer {token}"}
            async with ws_connect(f"{ws}/ws/call/acl-call", additional_headers=auth) as feed:
                snapshot = json.loads(await feed.recv())
            assert [e["text"] for e in snapshot["events"]] == ["hello"]
            async with ws_connect(f"{ws}/ws/wallboard", additional_headers=auth) as feed:
                board = json.loads(await feed.recv())["board"]
            assert [t["call_id"] for t in board["calls"]] == ["acl-call"]
            for _ in range(50):  # the summary, published through the gateway's user
                if await r["panel"].get(keys.wallboard_state):
                    break
                await asyncio.sleep(0.1)
            assert await r["panel"].get(keys.wallboard_state)
        finally:
            await panels.stop()
        await bus.call_ended(
            CallEnded(call_id="acl-call", agent_id="a1", duration=1.0, finals=1, ended="stop")
        )
        meta, _ = await call_state(r["panel"], keys, "acl-call")
        assert meta["status"] == "ended"
    log = await admin.execute_command("ACL", "LOG")
    assert log == [], [(e["username"], e["object"], e["reason"]) for e in log]
    await admin.aclose()
