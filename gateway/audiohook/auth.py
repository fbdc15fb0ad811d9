"""AudioHook request authentication: the API key, and the RFC 9421 style message signature
(hmac-sha256 with the base64 client secret) Genesys adds when a client secret is configured,
each signature taken once (`Nonces`: a captured request replayed is refused)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable

from websockets.datastructures import Headers

from gateway.ingest import secret_matches

SIGNED = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)


def signature_base(headers: Headers, target: str, signature_input: str) -> str:
    """The RFC 9421 signature base AudioHook signs, from `Signature-Input`'s `sig1` value."""
    label, _, params = signature_input.partition("=")
    m = re.match(r"^\(([^)]*)\)", params)
    if label.strip() != "sig1" or m is None:
        raise ValueError("Signature-Input must be sig1=(...)")
    components = re.findall(r'"([^"]+)"', m.group(1))
    if sorted(components) != sorted(SIGNED):
        raise ValueError("the signature must cover " + " ".join(SIGNED))
    lines = []
    for name in components:
        if name == "@request-target":
            value = target
        elif name == "@authority":
            value = headers.get("Host", "")
        else:
            value = ", ".join(v.strip() for v in headers.get_all(name))
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {params}')
    return "\n".join(lines)


def sign(secret_b64: str, base: str) -> str:
    key = base64.b64decode(secret_b64)
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()


SKEW_S = 3  # a signature created this far in the future still counts (clocks differ)
MAX_AGE_S = 60  # nor one created longer ago than this, whatever its expiry says


class Nonces:
    """The nonces of the signatures seen, each until its signature expires: a signature is good
    once. Bounded: at most `limit` live entries (expired ones are dropped first); a flood of
    validly signed requests beyond that is refused rather than remembered."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._until: dict[str, float] = {}

    def first_use(self, nonce: str, until: float, now: float) -> bool | None:
        """True the first time `nonce` is seen, False on a replay, None when full."""
        if nonce in self._until and self._until[nonce] >= now:
            return False
        if len(self._until) >= self.limit:
            self._until = {n: t for n, t in self._until.items() if t >= now}
            if len(self._until) >= self.limit:
                return None
        self._until[nonce] = until
        return True


def verify(
    headers: Headers,
    target: str,
    api_key: str,
    secret_b64: str | None,
    nonces: Nonces | None = None,
    now: Callable[[], float] = time.time,
) -> str | None:
    """Why the request is not authentic, or None."""
    key = headers.get("X-API-KEY", "")
    if not secret_matches(key, api_key):
        return "X-API-KEY is missing or wrong"
    if not secret_b64:
        return None
    sig, sig_input = headers.get("Signature", ""), headers.get("Signature-Input", "")
    if not sig or not sig_input:
        return "the request is not signed"
    params = dict(re.findall(r';(\w+)=("[^"]*"|\d+)', sig_input))
    if params.get("alg", '"hmac-sha256"') != '"hmac-sha256"':
        return "signature alg must be hmac-sha256"
    if params.get("keyid", "").strip('"') != key:
        return "signature keyid does not match X-API-KEY"
    try:
        created, expires = int(params["created"]), int(params["expires"])
    except (KeyError, ValueError):
        return "signature needs created and expires"
    nonce = params.get("nonce", "").strip('"')
    if not 8 <= len(nonce) <= 256:
        return "signature needs a nonce"
    t = now()
    if created > t + SKEW_S or expires < t or created + MAX_AGE_S < t:
        return "signature is not fresh"
    try:
        expected = sign(secret_b64, signature_base(headers, target, sig_input))
    except (ValueError, binascii.Error) as exc:
        return f"signature: {exc}"
    m = re.match(r"^sig1=:([A-Za-z0-9+/=]+):$", sig.strip())
    if m is None or not secret_matches(m.group(1), expected):
        return "signature does not verify"
    if nonces is not None:
        until = min(expires, created + MAX_AGE_S) + SKEW_S
        first = nonces.first_use(nonce, until, t)
        if first is None:
            return "too many signed requests at once; try again"
        if not first:
            return "signature was used before (a replay)"
    return None
