"""Reading an experiment: the TOML file, CLI overrides merged in, then every check, before any work starts.

:mod:`harness.config` validates what each value may be on its own; this module checks the
names other parts of the harness define: the dataset, model and runtime registries, the
energy meters (:data:`harness.meters.METERS`), the device profile in ``target`` and the
variant names ``quantize.apply_to`` patterns must match. CLI flags are applied to the raw
mapping *before* validation, so an impossible override is reported exactly like an
impossible value in the file: ``<source>: key: message``.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.config import ExperimentSpec
from harness.errors import ConfigError
from harness.model_names import source_kind
from harness.registry import Registry
from harness.validation import format_validation_error

DEFAULT_EXPERIMENT = "default.toml"

#: the one wording of a spec error, ``<source>: key: message`` (shared with target profiles)
_format_validation_error = format_validation_error


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _toml_value(text: str) -> Any:
    """``text`` read as a TOML value (``3``, ``0.5``, ``true``, ``[1, 4]``, ``"x"``, ``{ width = 0.5 }``); any
    text that is not one is the string itself (``onnxruntime``)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def set_overrides(assignments: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` assignments as a nested override mapping for :func:`load_experiment`.

    ``KEY`` is dotted (``train.epochs``, ``measure.batch_sizes``): each part but the last names a table.
    ``VALUE`` is read as a TOML value, else kept as a string. A later assignment to the same key wins.
    The mapping is merged into the file's before validation, so an unknown key or an impossible value
    is reported as one in the file would be, naming the key.
    """
    out: dict[str, Any] = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        parts = [p.strip() for p in key.split(".")]
        if not sep or not all(parts):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted KEY, e.g. train.epochs=3")
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = _toml_value(text.strip())
    return out


def read_experiment_file(path: Path | None) -> tuple[dict[str, Any], str]:
    """Raw mapping and a display name; ``None`` reads the embedded default."""
    if path is None:
        text = resources.files("harness.experiments").joinpath(DEFAULT_EXPERIMENT).read_text()
        return tomllib.loads(text), f"<embedded {DEFAULT_EXPERIMENT}>"
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"experiment file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read experiment file {path}: {exc}") from None
    try:
        return tomllib.loads(text), str(path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


# ---------------------------------------------------------------------------- checks


def _check_target(spec: ExperimentSpec) -> None:
    from harness.runtimes import RUNTIMES
    from harness.targets import check_target

    if spec.target is not None and all(r in RUNTIMES for r in spec.runtimes):  # else _check_names says
        try:
            check_target(spec, spec.target)
        except ConfigError as exc:
            raise ValueError(f"{exc}{f' ({exc.hint})' if exc.hint else ''}") from None


def _check_names(spec: ExperimentSpec) -> None:
    from harness.data import DATASETS
    from harness.models import MODELS
    from harness.runtimes import RUNTIMES

    checks: list[tuple[Registry[Any], str, str]] = [(DATASETS, spec.dataset.name, "dataset.name")]
    if source_kind(spec.model.name) == "zoo":
        checks.append((MODELS, spec.model.name, "model.name"))
    checks += [(RUNTIMES, r, "runtimes") for r in spec.runtimes]
    for registry, value, key in checks:
        if value not in registry:
            try:
                registry.check(value)
            except ConfigError as exc:
                raise ValueError(f"{key}: {exc}") from None


def _check_energy_meter(spec: ExperimentSpec) -> None:
    from harness.meters import METERS

    choice = spec.measure.energy_meter
    if choice != "auto" and choice not in METERS:
        close = difflib.get_close_matches(choice, ["auto", *METERS.names()], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"measure.energy_meter: unknown energy meter {choice!r}; {hint}choose 'auto' (the best "
                         f"meter this machine has) or one of: {', '.join(METERS.names())}")


def _check_apply_to(spec: ExperimentSpec) -> None:
    from harness.compress.variants import fp32_variant_names, unmatched_apply_to

    unmatched = unmatched_apply_to(spec)
    if unmatched is not None:
        index, pattern = unmatched
        raise ValueError(f"quantize.{index}.apply_to: {pattern!r} names no variant of this experiment "
                         f"(variants: {', '.join(fp32_variant_names(spec))})")


#: the checks :func:`check_experiment` runs, in order; the first that fails is reported
CHECKS = (_check_target, _check_names, _check_energy_meter, _check_apply_to)


def check_experiment(spec: ExperimentSpec, source: str = "experiment") -> ExperimentSpec:
    """``spec`` when every name it uses exists; else :class:`ConfigError` ``<source>: message``."""
    for check in CHECKS:
        try:
            check(spec)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return spec


def validate_experiment(raw: dict[str, Any], source: str = "experiment") -> ExperimentSpec:
    """Validate a raw mapping and check its names; :class:`ConfigError` ``<source>: key: message``."""
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    return check_experiment(spec, source)


def load_experiment(path: Path | None = None, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """Read, merge CLI overrides into, validate and check an experiment."""
    raw, source = read_experiment_file(path)
    if overrides:
        raw = deep_merge(raw, overrides)
    return validate_experiment(raw, source)
