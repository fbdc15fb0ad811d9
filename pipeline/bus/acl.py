"""Redis ACL users, one per role, each with the least it needs (Redis 6.2 or later).

| user      | keys                          | channels | commands                              |
|-----------|-------------------------------|----------|---------------------------------------|
| `gateway` | `{p}:*`                       | `{p}:*`  | read, write, streams, pub/sub, MULTI  |
| `worker`  | `{p}:jobs:*`, `{p}:results:*` | none     | streams, EXPIRE, MULTI                |
| `panel`   | `{p}:*`                       | `{p}:*`  | read, SUBSCRIBE, MULTI (no write/PUBLISH) |

Every user loses the dangerous commands (KEYS, FLUSHALL, CONFIG, DEBUG, SHUTDOWN, ...), and the
`default` user is off. `users_acl` writes the ACL file with each password as its SHA-256 (the file
holds no password), `urls` the Redis URL each role connects with. `agent-assist redis-users DIR`
makes both with random passwords.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from urllib.parse import quote

ROLES = ("gateway", "worker", "panel")
_SAFE = "-@dangerous"


def rules(prefix: str) -> dict[str, str]:
    """Each role's ACL rules (keys, channels, commands), without its password."""
    p = prefix
    return {
        "gateway": f"resetkeys resetchannels ~{p}:* &{p}:* -@all +@read +@write +@stream "
        f"+@pubsub +@transaction +@connection {_SAFE}",
        "worker": f"resetkeys resetchannels ~{p}:jobs:* ~{p}:results:* -@all +@stream +expire "
        f"+@transaction +@connection {_SAFE}",
        "panel": f"resetkeys resetchannels ~{p}:* &{p}:* -@all +@read +subscribe +psubscribe "
        f"+unsubscribe +punsubscribe +@transaction +@connection {_SAFE}",
    }


def users_acl(prefix: str, passwords: Mapping[str, str]) -> str:
    """The ACL file: `default` off, then one user per role with its rules and hashed password."""
    lines = ["user default off resetkeys resetchannels -@all"]
    for role, rule in rules(prefix).items():
        digest = hashlib.sha256(passwords[role].encode()).hexdigest()
        lines.append(f"user {role} on #{digest} {rule}")
    return "\n".join(lines) + "\n"


def passwords() -> dict[str, str]:
    return {role: secrets.token_urlsafe(32) for role in ROLES}


def urls(
    passwords: Mapping[str, str], host: str, port: int, tls: bool, db: int = 0
) -> dict[str, str]:
    """The URL each role connects with (`rediss://` when `tls`)."""
    scheme = "rediss" if tls else "redis"
    return {
        role: f"{scheme}://{role}:{quote(pw, safe='')}@{host}:{port}/{db}"
        for role, pw in passwords.items()
    }
