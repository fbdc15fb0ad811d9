"""The `agent-assist` command: serve, worker, replay, demo, key, token, settings, model."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import statistics
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from websockets.exceptions import InvalidStatus

from agent_assist import flags
from agent_assist import settings as settings_mod
from agent_assist.app import Service, serve
from agent_assist.replay import Received, WavError, replay
from agent_assist.worker import work
from coach_ui.auth import AuthConfig, Role, Verifier
from coach_ui.terminal import TerminalTranscript
from gateway.calls import IngestKey
from pipeline.assist.yamlfile import ConfigError
from pipeline.bus import acl
from pipeline.bus.client import masked
from pipeline.runtime.models import ModelError, resolve_model

log = logging.getLogger("agent_assist")
KEY_ENV = "AGENT_ASSIST_INGEST_KEY"


def sample_call() -> Path:
    return Path(str(resources.files("agent_assist") / "samples" / "sample_call.wav"))


class _Progress:
    """A progress bar for the one-time model assembly."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, unit="B", unit_scale=True, desc="assembling model", file=sys.stderr
            )
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("faster_whisper", "websockets"):  # one line per pass / connection otherwise
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-assist", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "serve", help="run the gateway (and, unless --role gateway, the models) in one process"
    )
    settings_mod.add_arguments(p)

    p = sub.add_parser(
        "worker", help="run the models for gateways started with --role gateway (Redis Streams)"
    )
    settings_mod.add_arguments(p)

    p = sub.add_parser("replay", help="stream a stereo WAV to a gateway and print the events")
    p.add_argument("file", type=Path, help="stereo WAV, 16-bit PCM or mu-law, 8 or 16 kHz")
    p.add_argument(
        "--url", required=True, help="gateway stream URL, e.g. ws://127.0.0.1:8080/v1/stream"
    )
    p.add_argument("--speed", type=float, default=1.0, help="1 = real time, 4 = four times faster")
    p.add_argument("--json", action="store_true", help="print one JSON object per event per line")
    p.add_argument("--call-id", help="call id to send (default: random)")
    p.add_argument("--agent-id", default="replay-agent")
    p.epilog = (
        f"The ingest key to present is read from {KEY_ENV} (or the file {KEY_ENV}_FILE names)."
    )

    p = sub.add_parser(
        "key", help="make a random ingest key for --ingest-keys (prints TENANT:SECRET)"
    )
    p.add_argument("tenant", help="the tenant (customer or platform) the key is for")

    p = sub.add_parser(
        "redis-users",
        help="make Redis ACL users for the gateway, the workers and the panels (random passwords)",
        description="Writes DIR/users.acl (Redis's aclfile: hashed passwords, default user off) "
        "and DIR/gateway.url, worker.url, panel.url (the URL each role connects with), mode "
        "0600. `kubectl create secret generic agent-assist-redis-users --from-file=DIR` ships "
        "them to deploy/k8s.",
    )
    p.add_argument("dir", type=Path, help="a new directory for the files")
    p.add_argument("--host", default="agent-assist-redis", help="Redis's host name")
    p.add_argument("--port", type=int, default=6379)
    p.add_argument("--tls", action="store_true", help="rediss:// URLs (Redis with TLS)")
    p.add_argument("--prefix", default="aa", help="the deployment's --redis-prefix")

    p = sub.add_parser(
        "k8s-secrets",
        help="make the Secrets deploy/k8s needs where they are missing (keeps existing ones)",
        description="Creates agent-assist-secrets (an ingest key for TENANT, the panels' "
        "secret) and agent-assist-redis-users (Redis ACL users) in the namespace, each only "
        "if it is missing; prints what it made or kept, never a value. In a pod it acts as "
        "the pod's service account (deploy/k8s/secrets.yaml runs it); elsewhere give "
        "--kubeconfig.",
    )
    p.add_argument("--namespace", help="default: the pod's own namespace")
    p.add_argument("--kubeconfig", type=Path, help="outside the cluster: a kubeconfig file")
    p.add_argument("--tenant", default="default", help="the tenant of the ingest key it makes")
    p.add_argument("--redis-host", default="agent-assist-redis", help="Redis's host name")
    p.add_argument("--redis-port", type=int, default=6379)
    p.add_argument("--prefix", default="aa", help="the deployment's --redis-prefix")

    p = sub.add_parser(
        "token",
        help="mint a panel token (shared-secret mode: signed with --panel-secret)",
        description="Prints a signed token for the panels. The secret is the panels' own "
        "(AGENT_ASSIST_PANEL_SECRET or its _FILE), never a flag.",
    )
    p.add_argument("subject", help="who the token is for (a login name)")
    p.add_argument("--role", choices=[r.name.lower() for r in Role], default="agent")
    p.add_argument("--agent-id", default="", help="an agent's own agent id (agents need one)")
    p.add_argument("--hours", type=float, default=8.0, help="how long it is good for")

    p = sub.add_parser(
        "demo", help="serve, then replay the bundled sample call, showing its live transcript"
    )
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time)")
    p.add_argument(
        "--file", type=Path, default=None, help="a stereo WAV instead of the sample call"
    )
    p.add_argument(
        "--hold", action="store_true", help="keep serving the panels after the call (Ctrl-C ends)"
    )
    settings_mod.add_arguments(p)

    p = sub.add_parser("settings", help="print the effective settings")
    p.add_argument(
        "--markdown", action="store_true", help="print the table of all settings instead"
    )
    settings_mod.add_arguments(p)

    p = sub.add_parser("model", help="prepare the configured model (assemble it offline once)")
    settings_mod.add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "replay":
            _setup_logging("WARNING")
            return asyncio.run(_replay(args))
        if args.command == "key":
            print(IngestKey(args.tenant, secrets.token_urlsafe(32)).text())
            return 0
        if args.command == "token":
            return _token(args)
        if args.command == "redis-users":
            return _redis_users(args)
        if args.command == "k8s-secrets":
            return _k8s_secrets(args)
        settings = settings_mod.load(args)
        _setup_logging(settings.log_level)
        if args.command == "serve":
            asyncio.run(serve(settings, _Progress()))
        elif args.command == "worker":
            asyncio.run(work(settings, _Progress()))
        elif args.command == "demo":
            return asyncio.run(_demo(args, settings))
        elif args.command == "settings":
            if args.markdown:
                print(settings_mod.markdown_table(), end="")
            else:
                print(json.dumps(flags.shown_settings(settings), indent=2))
        elif args.command == "model":
            print(resolve_model(settings.model, settings.model_cache, _Progress()))
    except (ModelError, WavError, ConfigError, OSError, ValueError) as exc:
        print(f"agent-assist: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _redis_users(args: argparse.Namespace) -> int:
    made = acl.passwords()
    args.dir.mkdir(mode=0o700, parents=True, exist_ok=False)
    files = {"users.acl": acl.users_acl(args.prefix, made)} | {
        f"{role}.url": url for role, url in acl.urls(made, args.host, args.port, args.tls).items()
    }
    for name, text in files.items():
        path = args.dir / name
        path.touch(mode=0o600)
        path.write_text(text if name.endswith(".acl") else text + "\n")
    print(f"wrote {', '.join(files)} to {args.dir} (mode 0600)")
    return 0


def _k8s_secrets(args: argparse.Namespace) -> int:
    from agent_assist import k8s_secrets as k8s  # the Kubernetes client only where it is used

    namespace = args.namespace or k8s.NAMESPACE_FILE.read_text().strip()
    wanted = k8s.wanted(args.tenant, args.prefix, args.redis_host, args.redis_port)
    try:
        done = k8s.ensure(k8s.connect(args.kubeconfig), namespace, wanted)
    except k8s.ApiException as exc:
        print(f"agent-assist: {k8s.refusal(exc)}", file=sys.stderr)
        return 1
    except (k8s.ConfigException, k8s.Unreachable) as exc:
        print(f"agent-assist: no Kubernetes API to talk to: {exc}", file=sys.stderr)
        return 1
    for name, outcome in done.items():
        print(f"{outcome.value} Secret {namespace}/{name}")
    return 0


def _token(args: argparse.Namespace) -> int:
    config = settings_mod.load(None).panel().auth
    if not config.secret:
        print(
            "agent-assist: set AGENT_ASSIST_PANEL_SECRET (or AGENT_ASSIST_PANEL_SECRET_FILE) to "
            "the panels' --panel-secret first",
            file=sys.stderr,
        )
        return 1
    role = Role[args.role.upper()]
    if role is Role.AGENT and not args.agent_id:
        print("agent-assist: an agent's token needs --agent-id", file=sys.stderr)
        return 1
    verifier = Verifier(AuthConfig(secret=config.secret))
    print(verifier.mint(args.subject, role, args.agent_id, args.hours * 3600))
    return 0


async def _replay(args: argparse.Namespace) -> int:
    view = TerminalTranscript()

    def show(got: Received) -> None:
        if args.json:
            print(json.dumps(got.event), flush=True)
        else:
            view.show(got.event, got.latency)

    key = flags.from_environment(os.environ, KEY_ENV)
    try:
        result = await replay(
            args.file, args.url, args.speed, show, args.call_id, args.agent_id, key=key
        )
    except InvalidStatus as exc:
        body = exc.response.body.decode(errors="replace").strip()
        print(f"agent-assist: the gateway refused: HTTP {exc.response.status_code} {body}",
              file=sys.stderr)  # fmt: skip
        return 1
    if result.close_code not in (None, 1000):
        print(
            f"agent-assist: server closed the call: {result.close_code} {result.close_reason}",
            file=sys.stderr,
        )
        return 1
    return 0


async def _demo(args: argparse.Namespace, settings: settings_mod.Settings) -> int:
    settings = dataclasses.replace(settings, port=0) if settings.port == 8080 else settings
    if settings.panel_port == 8081:  # the default: let the demo run beside a server
        settings = dataclasses.replace(settings, panel_port=0)
    if settings.audiosocket_port == 9092:
        settings = dataclasses.replace(settings, audiosocket_port=0)
    if settings.webrtc_port < 0:  # off by default; the demo's softphone listens on loopback
        settings = dataclasses.replace(settings, webrtc_port=0)
    if not settings.ingest_keys:  # a key of its own, for this run only
        key = IngestKey("demo", secrets.token_urlsafe(24))
        settings = dataclasses.replace(settings, ingest_keys=key.text())
    path = args.file or sample_call()
    print("agent-assist demo: starting Redis, the speech model and the gateway ...", flush=True)
    async with Service(settings, _Progress()) as service:
        assert service.gateway is not None
        print(f"  gateway   {service.url}")
        print(f"  metrics   http://{settings.host}:{service.gateway.port}/metrics")
        events = f"{settings.redis_prefix}:events"
        print(f"  redis     {masked(service.redis_url)}  (subscribe to {events})")
        if service.gateway.webrtc is not None:
            print(f"  softphone {service.gateway.webrtc.url}/softphone  (call in from a browser)")
            print(f"  ingest key   {service.ingest_key}  (this run's; the softphone asks for it)")
        if service.panels is not None:
            panels = service.panels
            token = panels.mint("demo-supervisor", Role.SUPERVISOR)
            print(f"  wall board   {panels.url('/wallboard')}")
            print(f"  agent panel  {panels.url('/agent/demo-agent')}")
            print(f"  sign in      {panels.login_url(token, '/wallboard')}")
            print("               (a supervisor's link for this run: it signs in, then opens)")
            if not args.hold:
                print("  (open them now: the panels stop with the call; --hold keeps them up)")
        print(
            f"replaying {path.name} at {args.speed:g}x "
            "(customer on the left channel, agent on the right)\n",
            flush=True,
        )
        view = TerminalTranscript()
        result = await replay(
            path,
            service.url,
            args.speed,
            lambda got: view.show(got.event, got.latency),
            agent_id="demo-agent",
            key=service.ingest_key,
        )
        if args.hold and service.panels is not None:
            print("\ncall over; panels still up (Ctrl-C to stop)", flush=True)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    finals = [r for r in result.received if r.event.get("final")]
    lags = sorted(r.latency for r in finals if r.latency is not None)
    if lags:
        p95 = lags[min(len(lags) - 1, round(0.95 * (len(lags) - 1)))]
        print(
            f"\n{len(finals)} final transcripts; end of speech to final on screen: "
            f"median {statistics.median(lags):.2f} s, p95 {p95:.2f} s"
        )
    return 0 if finals else 1


if __name__ == "__main__":
    sys.exit(main())
