"""Connecting to Redis: retries, TLS (`rediss://`) and URLs fit to show (`masked`).

In: a Redis URL (its password a secret), TLS files. Out: a client for `pipeline.bus.redis_bus`,
`pipeline.bus.jobs` and the panels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from pipeline.runtime.retry import client_backoff


@dataclass(frozen=True, slots=True)
class RedisTls:
    """How a `rediss://` client checks the server and proves itself: the CA that signed the
    server's certificate (default: the system's), and a client certificate and key when the
    server asks for one (`tls-auth-clients`)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None


def connect(url: str, decode: bool = True, tls: RedisTls | None = None) -> Redis:
    """A client that retries dropped connections with jittered backoff (`decode=False` for one
    that carries bytes, such as audio on the job streams). A `rediss://` URL is TLS, the
    server's certificate verified (against `tls.ca` when given)."""
    extra: dict[str, Any] = {}
    if url.startswith("rediss://") and tls is not None:
        extra = {"ssl_ca_certs": tls.ca, "ssl_certfile": tls.cert, "ssl_keyfile": tls.key}
    return Redis.from_url(
        url,
        decode_responses=decode,
        retry=Retry(client_backoff(), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=15,
        # no CLIENT SETINFO nor MAINT_NOTIFICATIONS: the ACL users may not run CLIENT
        driver_info=DriverInfo(name=None, lib_version=None),
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
        **extra,
    )


def masked(url: str) -> str:
    """A Redis URL fit for a log line or a screen: its password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
