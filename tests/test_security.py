"""Secure by default, the parts without a server: ingest keys, the refusal to expose an ingest
without a credential, secrets kept out of reprs and printed settings, signature nonces.

The refusals themselves, on real servers, are in `test_ingest_errors.py`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import jwt
import pytest

from agent_assist import flags
from agent_assist import settings as s
from agent_assist.app import minted
from coach_ui.auth import AuthConfig, AuthError, Identity, Role, Verifier
from gateway.audiohook.auth import Nonces
from gateway.calls import GatewayConfig, IngestKey, parse_ingest_keys
from gateway.ingest import kept_metadata, masked_phone
from gateway.server import exposure, is_loopback, unprotected

CLI = [sys.executable, "-m", "agent_assist.cli"]
SECRET = "a-secret-long-enough-0123"


def test_ingest_keys_parse_with_several_per_tenant_for_rotation():
    keys = parse_ingest_keys(f"acme:{SECRET}, acme:{SECRET}-next ,globex:{SECRET}-g")
    assert [k.tenant for k in keys] == ["acme", "acme", "globex"]
    assert keys[1].secret == f"{SECRET}-next"
    assert parse_ingest_keys("") == ()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("no-colon-at-all-0123456789", "TENANT:SECRET"),
        ("bad tenant:" + SECRET, "TENANT:SECRET"),
        ("acme:short", "at least 16"),
        ("acme:" + SECRET + "\x7f", "printable ASCII"),
    ],
)
def test_a_malformed_ingest_key_is_refused_without_echoing_the_secret(text, why):
    with pytest.raises(ValueError, match=why) as exc:
        parse_ingest_keys(text)
    secret = text.partition(":")[2]
    assert not secret or secret not in str(exc.value)


def test_secrets_stay_out_of_reprs_and_printed_settings():
    key = IngestKey("acme", SECRET)
    config = GatewayConfig(twilio_auth_token=SECRET, audiohook_api_key=SECRET, ingest_keys=(key,))
    settings = s.Settings(ingest_keys=key.text(), panel_secret=SECRET, twilio_auth_token=SECRET)
    for text in (repr(key), repr(config), repr(settings)):
        assert SECRET not in text
    shown = flags.shown_settings(settings)
    assert shown["ingest_keys"] == shown["panel_secret"] == shown["twilio_auth_token"] == "***"
    assert shown["audiohook_api_key"] is None and shown["port"] == 8080
    out = subprocess.run(
        [*CLI, "settings"],
        env=os.environ | {"AGENT_ASSIST_INGEST_KEYS": key.text()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and SECRET not in out.stdout
    assert json.loads(out.stdout)["ingest_keys"] == "***"


def test_a_bare_boolean_flag_is_true():
    parser = __import__("argparse").ArgumentParser()
    s.add_arguments(parser)
    assert s.load(parser.parse_args(["--insecure"]), {}).insecure is True
    assert s.load(parser.parse_args(["--insecure", "false"]), {}).insecure is False


def test_only_a_loopback_address_may_serve_an_ingest_without_its_credential():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("gateway.example.com")
    bare = GatewayConfig(host="0.0.0.0", webrtc_port=0)
    assert unprotected(bare) == [
        "/v1/stream (--ingest-keys)",
        "/twilio (--twilio-auth-token)",
        "/audiohook (--audiohook-api-key)",
        "/audiofork (--ingest-keys)",
        "WebRTC (--ingest-keys)",
    ]
    problem = exposure(bare)
    assert problem is not None and "refusing to listen on 0.0.0.0" in problem
    assert "--insecure" in problem and "--ingests" in problem
    assert exposure(GatewayConfig(host="127.0.0.1")) is None  # closed, but only local
    assert exposure(GatewayConfig(host="0.0.0.0", insecure=True)) is None  # loudly open
    keyed = GatewayConfig(
        host="0.0.0.0", ingests=("native", "audiofork"), ingest_keys=(IngestKey("a", SECRET),)
    )
    assert exposure(keyed) is None
    full = GatewayConfig(
        host="0.0.0.0",
        ingest_keys=(IngestKey("a", SECRET),),
        twilio_auth_token=SECRET,
        audiohook_api_key=SECRET,
    )
    assert exposure(full) is None


def test_serve_on_all_interfaces_without_credentials_exits_with_a_clear_message():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ASSIST_")}
    env.pop("REDIS_URL", None)
    t0 = time.monotonic()
    out = subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "refusing to listen on 0.0.0.0" in out.stderr and "--ingest-keys" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - t0 < 60, "refused before any model or Redis starts"


def test_the_key_command_makes_a_key_that_parses():
    out = subprocess.run([*CLI, "key", "acme"], capture_output=True, text=True, timeout=60)
    (key,) = parse_ingest_keys(out.stdout.strip())
    assert key.tenant == "acme" and len(key.secret) >= 32


def test_a_minted_key_is_made_once_into_a_private_file(tmp_path):
    path = tmp_path / "state" / "ingest-keys"
    first = minted(s.Settings(mint_ingest_key=path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (key,) = parse_ingest_keys(first.ingest_keys)
    assert key.tenant == "default"
    assert minted(s.Settings(mint_ingest_key=path)).ingest_keys == first.ingest_keys
    given = s.Settings(mint_ingest_key=tmp_path / "unused", ingest_keys=f"own:{SECRET}")
    assert minted(given).ingest_keys == f"own:{SECRET}"
    assert not (tmp_path / "unused").exists()


def test_a_signature_nonce_is_good_once_and_the_cache_is_bounded():
    nonces = Nonces(limit=2)
    assert nonces.first_use("n1", until=100, now=50) is True
    assert nonces.first_use("n1", until=100, now=60) is False  # a replay
    assert nonces.first_use("n2", until=100, now=60) is True
    assert nonces.first_use("n3", until=100, now=60) is None  # full of live ones: refused
    assert nonces.first_use("n3", until=200, now=150) is True  # the expired made room
    assert nonces.first_use("n1", until=300, now=150) is True  # expired: no longer a replay


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("+15555550100", "***0100"),
        ("+1 (555) 555-0100", "***0100"),
        ("555-0100", "***0100"),
        ("+44 20 7946 0958", "***0958"),
        ("billing", "billing"),
        ("2026-12-06", "2026-12-06"),
        ("42", "42"),
        ("1234567890123456789", "1234567890123456789"),  # too long for a number: an id
    ],
)
def test_a_phone_number_in_metadata_is_masked(value, shown):
    assert masked_phone(value) == shown


def test_metadata_is_cut_to_the_configured_scalar_fields():
    raw = {"queue": "billing", "ani": "+15555550100", "notes": "VIP", "nested": {"a": 1},
           "flag": True, "long": "x" * 1000}  # fmt: skip
    allowed = frozenset({"queue", "ani", "nested", "flag", "long", "absent"})
    assert kept_metadata(raw, allowed) == {"queue": "billing", "ani": "***0100", "long": "x" * 256}
    assert kept_metadata(raw, frozenset()) == {}


PANEL_SECRET = "panel-secret-for-the-unit-tests-0123456789"


def test_a_panel_token_carries_a_role_and_an_agents_id():
    verifier = Verifier(AuthConfig(secret=PANEL_SECRET))
    ident = verifier.verify(verifier.mint("maria", Role.AGENT, "a7"))
    assert (ident.subject, ident.role, ident.agent_id) == ("maria", Role.AGENT, "a7")
    assert ident.may_see_agent("a7") and not ident.may_see_agent("a8")
    assert not ident.may_see_agent("") and not ident.may_see_board
    boss = verifier.verify(verifier.mint("sam", Role.SUPERVISOR))
    assert boss.may_see_board and boss.may_see_agent("a8")
    assert Role.named("agent-assist-admin") is Role.ADMIN and Role.named("Supervisor")
    assert Role.named("offline_access") is None


def test_a_panel_token_is_refused_when_forged_expired_or_incomplete():
    verifier = Verifier(AuthConfig(secret=PANEL_SECRET))
    now = int(time.time())
    base = {"iss": "agent-assist", "aud": "agent-assist-panels", "sub": "x", "roles": ["admin"],
            "iat": now, "exp": now + 60}  # fmt: skip
    forged = [
        jwt.encode(base, "another-secret-of-enough-length-0123456789", algorithm="HS256"),
        jwt.encode(base | {"exp": now - 120}, PANEL_SECRET, algorithm="HS256"),
        jwt.encode(base | {"aud": "someone-else"}, PANEL_SECRET, algorithm="HS256"),
        jwt.encode(base | {"iss": "someone-else"}, PANEL_SECRET, algorithm="HS256"),
        jwt.encode({k: v for k, v in base.items() if k != "exp"}, PANEL_SECRET, "HS256"),
        jwt.encode(base | {"roles": ["agent"]}, PANEL_SECRET, algorithm="HS256"),  # no agent_id
        jwt.encode(base | {"roles": []}, PANEL_SECRET, algorithm="HS256"),
        jwt.encode(base, None, algorithm="none"),  # unsigned
        "not.a.token",
    ]
    for token in forged:
        with pytest.raises(AuthError) as exc:
            verifier.verify(token)
        assert token not in str(exc.value)
    with pytest.raises(ValueError, match="at least 32"):
        Verifier(AuthConfig(secret="short"))


def test_the_token_command_mints_with_the_panels_secret():
    env = os.environ | {"AGENT_ASSIST_PANEL_SECRET": PANEL_SECRET}
    run = [*CLI, "token", "maria", "--role", "agent", "--agent-id", "a7", "--hours", "1"]
    out = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    ident = Verifier(AuthConfig(secret=PANEL_SECRET)).verify(out.stdout.strip())
    assert ident == Identity("maria", Role.AGENT, "a7")
    env.pop("AGENT_ASSIST_PANEL_SECRET")
    out = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "AGENT_ASSIST_PANEL_SECRET" in out.stderr
