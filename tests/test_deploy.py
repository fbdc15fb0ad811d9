"""What `deploy/` ships for operators: the Prometheus rules pass `promtool` (syntax and their own
unit tests: slow finals, a final backlog, shed interims, errors and a dead worker fire; a healthy
worker raises nothing), and the rules and the Grafana dashboard name only metrics the process
exports."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from pipeline import metrics  # registers every metric

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
