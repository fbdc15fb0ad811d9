"""What `deploy/` ships for operators: the Prometheus rules pass `promtool` (syntax and their own
unit tests: slow finals, a final backlog, shed interims, errors and a dead worker fire; a healthy
worker raises nothing), and the rules and the Grafana dashboard name only metrics the process
exports. The Kubernetes manifests pass the Kubernetes schema (`kubernetes-validate --strict`) and
fit together; the Dockerfile passes `hadolint`."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from agent_assist import settings as settings_mod
from agent_assist.cli import build_parser
from agent_assist.settings import Settings
from pipeline.runtime import metrics  # registers every metric

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
PROMTOOL = "/usr/bin/promtool"  # Debian package prometheus (`make test` installs it)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=60
    )


def exported() -> set[str]:
    """Every series name the process can export."""
    names = set()
    for family in REGISTRY.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }.get(family.type, ("",))
        names |= {family.name + s for s in suffixes}
    return names


def recorded() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"]]
    dash = json.loads(DASHBOARD.read_text())
    return exprs + [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests():
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@pytest.mark.parametrize("expr", expressions())
def test_every_expression_names_a_metric_we_export(expr):
    names = set(re.findall(r"\bagent_assist[:\w]*", expr))
    assert names or expr.startswith("up{"), expr
    unknown = names - exported() - recorded()
    assert not unknown, f"{unknown} in {expr!r}"


def test_the_dashboard_is_well_formed():
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and dash["uid"] == "agent-assist"
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for needed in ("active calls", "final", "queue depth", "batch size", "shed", "errors"):
        assert needed in titles


def test_every_metric_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    names = {
        m._name + ("_total" if m._type == "counter" else "")
        for m in vars(metrics).values()
        if isinstance(m, MetricWrapperBase)
    }
    assert names, "no metrics found"
    missing = sorted(n for n in names if f"`{n}" not in readme)
    assert not missing, f"metrics missing from the README's table: {missing}"


# --- Kubernetes manifests and the Dockerfile ------------------------------------------------------
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent  # the linters install into the venv (dev dependencies)


def manifests() -> list[Path]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [K8S / name for name in kustomization["resources"]]


def objects() -> list[dict[str, Any]]:
    return [doc for path in manifests() for doc in yaml.safe_load_all(path.read_text()) if doc]


def containers() -> list[dict[str, Any]]:
    return [
        c
        for o in objects()
        if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
    ]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "kubernetes-validate", "--strict", "--quiet", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_schema(path):
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_manifest(tmp_path):
    broken = (K8S / "worker.yaml").read_text().replace("containerPort:", "containerPrt:", 1)
    (tmp_path / "worker.yaml").write_text(broken)
    assert validate(tmp_path / "worker.yaml").returncode != 0


def test_hadolint_accepts_the_dockerfile():
    result = subprocess.run(
        [BIN / "hadolint", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_containers_run_real_commands_and_settings():
    """Each container's arguments parse as our CLI does, and every configured variable is one of
    our settings (a typo there would be silently ignored by the process)."""
    known = {n for f in dataclasses.fields(Settings) for n in settings_mod._env_names(f)}
    commands = set()
    for container in containers():
        if container["image"] != "agent-assist":
            continue
        args = build_parser().parse_args(container["args"])
        settings_mod.load(args, environ={})  # values convert to their types
        commands.add(args.command)
        assert {e["name"] for e in container.get("env", [])} <= known
    assert commands == {"serve", "worker"}
    config = next(o for o in objects() if o["kind"] == "ConfigMap")
    assert set(config["data"]) <= known, set(config["data"]) - known
    settings_mod.load(None, environ=config["data"])


def test_selectors_ports_and_the_autoscaler_fit_together():
    objs = objects()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    for d in deployments.values():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in by_kind["Service"]:
        pods = [
            d
            for d in deployments.values()
            if service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, service["metadata"]["name"]
        names = {p["name"] for c in pods[0]["spec"]["template"]["spec"]["containers"]
                 for p in c["ports"]}  # fmt: skip
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
    for hpa in by_kind["HorizontalPodAutoscaler"]:
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "External":
                assert metric["external"]["metric"]["name"] in exported()
    worker = deployments["agent-assist-worker"]["spec"]["template"]
    port = worker["metadata"]["annotations"]["prometheus.io/port"]
    assert f"--port={port}" in worker["spec"]["containers"][0]["args"]
    adapter = yaml.safe_load((K8S / "prometheus-adapter-values.yaml").read_text())
    assert adapter["rules"]["external"][0]["name"]["as"] == "agent_assist_jobs_backlog"


def test_each_role_reaches_redis_as_its_own_user_and_only_they_reach_it(tmp_path):
    objs = objects()
    policy = next(o for o in objs if o["kind"] == "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "agent-assist-redis"
    }
    allowed = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
    }
    assert allowed == {"agent-assist-gateway", "agent-assist-worker"}
    deployments = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Deployment"}

    def secret_env(name: str) -> dict[str, tuple[str, str]]:
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        return {
            e["name"]: (ref["name"], ref["key"])
            for e in container.get("env", [])
            if (ref := e.get("valueFrom", {}).get("secretKeyRef"))
        }

    users = "agent-assist-redis-users"
    assert secret_env("agent-assist-gateway") == {
        "REDIS_URL": (users, "gateway.url"),
        "AGENT_ASSIST_PANEL_REDIS_URL": (users, "panel.url"),
    }
    assert secret_env("agent-assist-worker") == {"REDIS_URL": (users, "worker.url")}
    redis = deployments["agent-assist-redis"]["spec"]["template"]["spec"]
    assert "--aclfile" in redis["containers"][0]["args"]
    (volume,) = [v for v in redis["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == users
    # the Secret's keys are the files `agent-assist redis-users` writes
    out = subprocess.run(
        [BIN / "agent-assist", "redis-users", str(tmp_path / "u")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    written = {p.name for p in (tmp_path / "u").iterdir()}
    assert written == {"users.acl", "gateway.url", "worker.url", "panel.url"}
    assert all((p.stat().st_mode & 0o077) == 0 for p in (tmp_path / "u").iterdir())
