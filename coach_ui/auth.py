"""Who may see what on the panels: signed tokens (JWT, with PyJWT) and three roles.

- **agent**: the panel and the calls of the agent id the token names, nothing else;
- **supervisor**: the wall board and every call;
- **admin**: all a supervisor may, and the administration to come (rules, settings).

Two ways to issue tokens:

- *shared secret* (out of the box): HS256 tokens signed with `--panel-secret`, minted by
  `agent-assist token` (`Verifier.mint`); issuer `agent-assist`, audience `agent-assist-panels`.
- *OIDC*: RS256/ES256 tokens of your identity provider (Okta, Entra ID, Keycloak), verified
  against its JWKS (`--oidc-issuer`, `--oidc-audience`; the JWKS address from the issuer's
  discovery document unless `--oidc-jwks-url` names it). The role comes from a claim
  (`--oidc-role-claim`, a dotted path such as `realm_access.roles` for Keycloak; a list or a
  string; `agent`, `supervisor` or `admin`, optionally prefixed `agent-assist-`; the highest
  wins), the agent id from `--oidc-agent-claim`.

Every token must carry `exp`; a token expired, not yet valid, for another audience or issuer,
signed with another key or algorithm is refused with the reason (never the token) in the log.
"""

from __future__ import annotations

import enum
import json
import secrets
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import jwt

SHARED_ISSUER = "agent-assist"
SHARED_AUDIENCE = "agent-assist-panels"
MIN_SECRET = 32
OIDC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class Role(enum.IntEnum):
    AGENT = 1
    SUPERVISOR = 2
    ADMIN = 3

    @classmethod
    def named(cls, text: str) -> Role | None:
        name = text.strip().lower().removeprefix("agent-assist-").removeprefix("agent-assist:")
        return cls.__members__.get(name.upper())


class AuthError(Exception):
    """A token that does not authenticate anyone; the message says why (never the token)."""


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    role: Role
    agent_id: str = ""  # an agent's own id: the only agent whose calls they may see
    expires: float = field(default=0.0, compare=False)  # the token's `exp` (a session's end)

    def may_see_agent(self, agent_id: str) -> bool:
        return self.role >= Role.SUPERVISOR or (bool(agent_id) and agent_id == self.agent_id)

    @property
    def may_see_board(self) -> bool:
        return self.role >= Role.SUPERVISOR


@dataclass(frozen=True, slots=True)
class AuthConfig:
    secret: str = field(default="", repr=False)  # shared-secret mode's HS256 key
    oidc_issuer: str = ""  # OIDC mode when set
    oidc_audience: str = ""
    oidc_jwks_url: str = ""  # default: the issuer's discovery document names it
    oidc_role_claim: str = "roles"
    oidc_agent_claim: str = "agent_id"
    leeway_s: float = 30.0  # clocks differ


class Verifier:
    """Turns a presented token into an `Identity` (or `AuthError`), in the configured mode.
    `verify` may fetch the issuer's keys (OIDC, cached): run it off the event loop."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.oidc = bool(config.oidc_issuer)
        if not self.oidc and len(config.secret) < MIN_SECRET:
            raise ValueError(
                f"--panel-secret: at least {MIN_SECRET} characters (or leave it empty for a "
                "random one per start, or configure --oidc-issuer)"
            )
        self._jwks: jwt.PyJWKClient | None = None

    @classmethod
    def random(cls) -> Verifier:
        """Shared-secret mode with a secret of its own (tokens live as long as the process)."""
        return cls(AuthConfig(secret=secrets.token_urlsafe(48)))

    def verify(self, token: str) -> Identity:
        if not token.isascii() or len(token) > 16_384:
            raise AuthError("token refused: not a JWT")
        try:
            claims = self._claims(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"token refused: {exc}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthError("token refused: no subject (sub)")
        role = self._role(claims)
        if role is None:
            raise AuthError("token refused: no agent, supervisor or admin role")
        agent_claim = "agent_id" if not self.oidc else self.config.oidc_agent_claim
        agent_id = _claim(claims, agent_claim)
        if not isinstance(agent_id, str):
            agent_id = ""
        if role is Role.AGENT and not agent_id:
            raise AuthError(f"token refused: an agent's token needs {agent_claim}")
        exp = claims["exp"]  # required, and checked to be a number by PyJWT
        return Identity(subject, role, agent_id, float(exp))

    def mint(self, subject: str, role: Role, agent_id: str = "", ttl_s: float = 8 * 3600) -> str:
        """A shared-secret token (what `agent-assist token` prints)."""
        if self.oidc:
            raise ValueError("tokens come from the identity provider in OIDC mode")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": SHARED_ISSUER,
            "aud": SHARED_AUDIENCE,
            "sub": subject,
            "roles": [role.name.lower()],
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl_s),
        }
        if agent_id:
            claims["agent_id"] = agent_id
        return jwt.encode(claims, self.config.secret, algorithm="HS256")

    def _claims(self, token: str) -> dict[str, Any]:
        required: Any = {"require": ["exp", "sub"]}
        leeway = self.config.leeway_s
        if not self.oidc:
            return jwt.decode(
                token,
                self.config.secret,
                algorithms=["HS256"],
                audience=SHARED_AUDIENCE,
                issuer=SHARED_ISSUER,
                options=required,
                leeway=leeway,
            )
        key = self._keys().get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=OIDC_ALGORITHMS,
            audience=self.config.oidc_audience or None,
            issuer=self.config.oidc_issuer,
            options=required | {"verify_aud": bool(self.config.oidc_audience)},
            leeway=leeway,
        )

    def _keys(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            url = self.config.oidc_jwks_url or _discover_jwks(self.config.oidc_issuer)
            self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=10)
        return self._jwks

    def _role(self, claims: dict[str, Any]) -> Role | None:
        value = _claim(claims, "roles" if not self.oidc else self.config.oidc_role_claim)
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        roles = [r for r in (Role.named(n) for n in names if isinstance(n, str)) if r]
        return max(roles) if roles else None


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (`realm_access.roles`)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _discover_jwks(issuer: str) -> str:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            document = json.load(response)
    except (OSError, ValueError) as exc:
        raise jwt.PyJWKClientError(f"OIDC discovery at {url} failed: {exc}") from None
    jwks = document.get("jwks_uri") if isinstance(document, dict) else None
    if not isinstance(jwks, str):
        raise jwt.PyJWKClientError(f"OIDC discovery at {url} names no jwks_uri")
    return jwks
