"""The import rules of docs/architecture.md, checked on the source (no module is imported).

- `pipeline.types` imports nothing of the project; `pipeline.runtime` only `types`.
- A stage package (speech, mood, assist, bus) imports `types`, `runtime`, its own modules, and
  another stage only through that package's own names (`from pipeline.mood import find_cues`),
  along the allowed edges; never `pipeline.session`.
- Nothing imports upwards: pipeline < gateway, coach_ui < agent_assist < loadtest, eval, scripts;
  the shipped packages never import tests or load drivers.
- No product module over 350 lines without a docstring that says why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("pipeline", "gateway", "coach_ui", "agent_assist")
STAGES = ("speech", "mood", "assist", "bus")
# which other stages a stage may use (through their package's names)
STAGE_USES = {
    "speech": set(),
    "mood": set(),
    "assist": {"mood"},
    "bus": {"speech", "mood", "assist"},
}
# the layers, lowest first: a package may import only its own layer's and lower ones
LAYERS = [{"pipeline"}, {"gateway", "coach_ui"}, {"agent_assist"}, {"loadtest", "eval", "scripts"}]
PROJECT = set().union(*LAYERS) | {"tests"}
LONG = 350


def modules() -> list[tuple[str, Path]]:
    out = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append((".".join(p for p in parts if p != "__init__"), path))
    return out


def imports(path: Path) -> list[str]:
    """Every project module a file imports (`from a.b import c` counts as `a.b` and `a.b.c`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return [name for name in found if name.split(".")[0] in PROJECT]


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name.split(".")[0] in names)


def violations(module: str, imported: list[str]) -> list[str]:
    bad = []
    for name in imported:
        top = name.split(".")[0]
        if top == "tests" or layer(name) > layer(module):
            bad.append(f"{module} imports {name}: a higher layer")
    if not module.startswith("pipeline."):
        return bad
    inner = [n for n in imported if n.startswith("pipeline.")]
    part = module.split(".")[1]
    for name in inner:
        target = name.split(".")[1]
        if part == "types":
            bad.append(f"pipeline.types imports {name}: types import nothing of the project")
        elif part == "runtime" and target not in ("types", "runtime"):
            bad.append(f"{module} imports {name}: runtime uses only types")
        elif part in STAGES and target == "session":
            bad.append(f"{module} imports {name}: stages do not know the session")
        elif part in STAGES and target in STAGES and target != part:
            if target not in STAGE_USES[part]:
                bad.append(f"{module} imports {name}: {part} may not use {target}")
            elif name.count(".") > 1 and _is_module(name):
                bad.append(f"{module} imports {name}: another stage's internals")
    return bad


def _is_module(name: str) -> bool:
    """Whether a dotted name is a module or package of the project (not a name inside one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_the_import_rules_hold():
    bad = [v for module, path in modules() for v in violations(module, imports(path))]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "imported", "why"),
    [
        ("pipeline.types", ["pipeline.speech.audio"], "types import nothing"),
        ("pipeline.assist.rules", ["pipeline.mood.frustration"], "internals"),
        ("pipeline.speech.stream", ["pipeline.mood"], "may not use"),
        ("pipeline.mood.call_mood", ["pipeline.session"], "do not know the session"),
        ("pipeline.bus.jobs", ["gateway.calls"], "a higher layer"),
        ("gateway.native", ["loadtest.clients"], "a higher layer"),
    ],
)
def test_the_check_catches_a_broken_rule(module, imported, why):
    assert any(why in v for v in violations(module, imported))


def test_stage_packages_say_what_enters_and_leaves():
    for stage in (*STAGES, "runtime"):
        doc = ast.get_docstring(ast.parse((ROOT / "pipeline" / stage / "__init__.py").read_text()))
        assert doc and "In:" in doc and "Out:" in doc, stage


def test_long_modules_say_why():
    long = [
        (module, n)
        for module, path in modules()
        if (n := len(path.read_text().splitlines())) > LONG
        and "longer than most" not in (ast.get_docstring(ast.parse(path.read_text())) or "")
    ]
    assert not long, long


def test_pipeline_top_level_stays_small():
    entries = [p.name for p in (ROOT / "pipeline").iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 8, sorted(entries)
