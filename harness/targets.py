"""Device profiles (``targets/*.toml``): what a board or machine offers, validated on load.

A profile says which precisions and runtimes a target has, whether its GPU has sparse
tensor cores and DLA cores, its memory, its energy meter and Jetson rail map (a key of
:data:`harness.meters.rails.RAIL_MAP`, never a copy of it), its default power mode, its
batch sizes and which TensorRT releases it can run. :func:`check_target` refuses an
experiment that asks a target for something it lacks, before any work;
:func:`detect_target` picks the profile of the machine it runs on from
``/proc/device-tree``, nvidia-smi and ``/proc/cpuinfo`` (all injectable).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError
from harness.meters.rails import read_board_model
from harness.validation import format_validation_error  # the one wording of spec errors


def _targets_dir() -> Path:
    """targets/ of the checkout (clone, editable install), else the copy a wheel ships as harness._targets."""
    checkout = Path(__file__).resolve().parents[1] / "targets"
    if (checkout / "x86-cpu.toml").is_file():
        return checkout
    from importlib.resources import files

    return Path(str(files("harness._targets")))


TARGETS_DIR = _targets_dir()
#: TensorRT majors the engine builder (harness.export.tensorrt) has a code path for
SUPPORTED_TENSORRT_MAJORS = (10, 11)

Precision = Literal["fp32", "tf32", "fp16", "bf16", "int8", "fp8", "int4", "fp4"]
PRECISIONS = get_args(Precision)
Version = Annotated[str, Field(pattern=r"^\d+\.\d+(\.\d+)*$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuSpec(_Spec):
    architecture: str
    compute_capability: Version  # the minimum, for a generic profile
    tensor_cores: bool
    sparse_tensor_cores: bool  # 2:4 structured sparsity in hardware (Ampere and newer)


class DlaSpec(_Spec):
    cores: Annotated[int, Field(gt=0)]
    precisions: list[Precision] = Field(min_length=1)


class MemorySpec(_Spec):
    unified: bool  # CPU and GPU share one memory (Jetson)
    sizes_gb: list[Annotated[float, Field(gt=0)]] = Field(default_factory=list)  # module variants; [] = varies


class EnergySpec(_Spec):
    meter: str  # a name in harness.meters.METERS
    fallback: str | None = None
    rail_map: str | None = None  # a key of harness.meters.rails.RAIL_MAP

    @field_validator("meter", "fallback")
    @classmethod
    def _known_meter(cls, v: str | None) -> str | None:
        from harness.meters import METERS

        return v if v is None else _registered(METERS, v)

    @field_validator("rail_map")
    @classmethod
    def _known_board(cls, v: str | None) -> str | None:
        from harness.meters.rails import RAIL_MAP

        if v is not None and v not in RAIL_MAP:
            raise ValueError(f"{v!r} is not a board of harness.meters.rails.RAIL_MAP ({', '.join(RAIL_MAP)})")
        return v

    @model_validator(mode="after")
    def _rails_for_rail_meters(self) -> EnergySpec:
        from harness.meters import rail_meters  # the meters that read Jetson INA3221 rails

        if self.rail_map is None and {self.meter, self.fallback} & set(rail_meters()):
            raise ValueError(f"rail_map is required when the meter reads Jetson rails ({', '.join(rail_meters())})")
        return self


class PowerSpec(_Spec):
    default_mode: str  # nvpmodel mode name, or "default" where there is no mode to set
    nvpmodel_id: Annotated[int, Field(ge=0)] | None = None
    clocks: str | None = None  # how clocks are pinned: "jetson_clocks", "nvidia-smi -lgc" ...


class TensorRTRelease(_Spec):
    version: Version  # the release (or the first one) the target runs
    via: str  # how it gets there: "JetPack 6.x (apt)", "pip tensorrt-cu13" ...
    dla: bool = False  # this release can put layers on the target's DLA

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


class TargetSpec(_Spec):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    description: str
    kind: Literal["jetson", "gpu", "cpu"]
    board_models: list[str] = Field(default_factory=list)  # fragments of /proc/device-tree/model
    compatible: list[str] = Field(default_factory=list)  # fragments of /proc/device-tree/compatible
    cpu_arch: Literal["x86_64", "aarch64"] | None = None
    precisions: list[Precision] = Field(min_length=1)
    runtimes: list[str] = Field(min_length=1)
    batch_sizes: list[Annotated[int, Field(gt=0)]] = Field(min_length=1)
    gpu: GpuSpec | None = None
    dla: DlaSpec | None = None
    memory: MemorySpec
    energy: EnergySpec
    power: PowerSpec | None = None
    tensorrt: list[TensorRTRelease] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @field_validator("runtimes")
    @classmethod
    def _known_runtimes(cls, v: list[str]) -> list[str]:
        from harness.runtimes import RUNTIMES

        return [_registered(RUNTIMES, r) for r in v]

    @field_validator("batch_sizes")
    @classmethod
    def _sorted_unique(cls, v: list[int]) -> list[int]:
        return sorted(set(v))

    @model_validator(mode="after")
    def _consistent(self) -> TargetSpec:
        if "fp32" not in self.precisions:
            raise ValueError("precisions must include fp32 (the dense baseline)")
        if self.kind == "jetson" and not (self.board_models or self.compatible):
            raise ValueError("a jetson target needs board_models or compatible to be detected")
        if self.kind != "cpu" and self.gpu is None:
            raise ValueError(f"a {self.kind} target needs a [gpu] table")
        if self.dla and not set(self.dla.precisions) <= set(self.precisions):
            raise ValueError(f"dla.precisions {self.dla.precisions} must be among precisions {self.precisions}")
        if any(r.dla for r in self.tensorrt) and self.dla is None:
            raise ValueError("a tensorrt release has dla = true but the target has no [dla] table")
        if "tensorrt" in self.runtimes and not self.tensorrt:
            raise ValueError("runtime 'tensorrt' is listed but no [[tensorrt]] release is")
        return self

    @property
    def tensorrt_majors(self) -> list[int]:
        return sorted({r.major for r in self.tensorrt})


def _registered(registry, name: str) -> str:
    try:
        registry.check(name)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return name


# ---------------------------------------------------------------------------- loading


def _target_path(name_or_path: str | Path, targets_dir: Path) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.parent != Path("."):
        if not path.exists():
            raise ConfigError(f"target file not found: {path}")
        return path
    candidate = Path(targets_dir) / f"{name_or_path}.toml"
    if not candidate.exists():
        import difflib

        known = [p.stem for p in sorted(Path(targets_dir).glob("*.toml"))]
        close = difflib.get_close_matches(str(name_or_path), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown target {str(name_or_path)!r}; {hint}known: {', '.join(known) or 'none'}")
    return candidate


def load_target(name_or_path: str | Path, targets_dir: Path = TARGETS_DIR) -> TargetSpec:
    """A validated profile, by name (``targets/NAME.toml``) or by path to a TOML file."""
    path = _target_path(name_or_path, targets_dir)
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read target profile: {exc}") from None
    try:
        spec = TargetSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    if spec.name != path.stem:
        raise ConfigError(f"{path}: name: {spec.name!r} must match the file name {path.stem!r}")
    return spec


def list_targets(targets_dir: Path = TARGETS_DIR) -> list[TargetSpec]:
    """Every profile in ``targets_dir``, by name; one invalid profile is an error naming it."""
    return [load_target(p, targets_dir) for p in sorted(Path(targets_dir).glob("*.toml"))]


# ---------------------------------------------------------------------------- checking


def requested_precisions(spec) -> list[str]:
    """Precisions an experiment produces: fp32 (dense and pruned) plus each quantization's."""
    wanted = ["fp32"] + [q.precision for q in getattr(spec, "quantize", [])]
    return list(dict.fromkeys(wanted))


def check_target(spec, target: str | Path | TargetSpec, targets_dir: Path = TARGETS_DIR) -> TargetSpec:
    """The target's profile, or a :class:`ConfigError` naming the runtime or precision it lacks."""
    profile = target if isinstance(target, TargetSpec) else load_target(target, targets_dir)
    for runtime in spec.runtimes:
        if runtime not in profile.runtimes:
            raise ConfigError(
                f"target {profile.name} has no runtime {runtime!r}; it offers: {', '.join(profile.runtimes)}",
                hint=f"pick runtimes from `harness targets show {profile.name}`",
            )
    for precision in requested_precisions(spec):
        if precision not in profile.precisions:
            raise ConfigError(
                f"target {profile.name} has no {precision} precision; it offers: {', '.join(profile.precisions)}",
                hint="drop the [[quantize]] entries that ask for it, or pick another target",
            )
    if "tensorrt" in spec.runtimes and not set(profile.tensorrt_majors) & set(SUPPORTED_TENSORRT_MAJORS):
        releases = ", ".join(f"{r.version} ({r.via})" for r in profile.tensorrt)
        raise ConfigError(
            f"target {profile.name} runs TensorRT {releases}; the harness builds engines with TensorRT "
            f"{' or '.join(map(str, SUPPORTED_TENSORRT_MAJORS))} only",
            hint="measure this target with the onnxruntime or torch runtimes",
        )
    return profile


# ---------------------------------------------------------------------------- detection

NVIDIA_SMI_QUERY = ["nvidia-smi", "--query-gpu=name,compute_cap,memory.total,driver_version",
                    "--format=csv,noheader,nounits"]


@dataclass(frozen=True)
class Detection:
    """The profile that fits this machine (``None`` when none does), and the evidence."""

    target: str | None
    reason: str
    board_model: str | None = None
    gpus: list[dict] = field(default_factory=list)  # name, compute_capability, memory_mb, driver
    cpu_arch: str | None = None
    cpu_flags: list[str] = field(default_factory=list)
    memory_gb: float | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def run_nvidia_smi() -> str | None:
    """``nvidia-smi``'s CSV answer to :data:`NVIDIA_SMI_QUERY`, or None when there is no GPU to ask."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def parse_nvidia_smi(text: str | None) -> list[dict]:
    gpus = []
    for line in (text or "").splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 4 or not cells[0]:
            continue
        cc, mem = cells[1], cells[2]
        gpus.append({
            "name": cells[0],
            "compute_capability": cc if cc[:1].isdigit() else None,
            "memory_mb": float(mem) if mem.replace(".", "", 1).isdigit() else None,
            "driver": cells[3],
        })
    return gpus


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _cpu_facts(proc_root: Path, machine: str) -> tuple[str | None, list[str], float | None]:
    fields: dict[str, str] = {}
    arch: str | None
    for line in _read_text(proc_root / "cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    if "flags" in fields:
        arch, flags = "x86_64", fields["flags"].split()
    elif "Features" in fields or "CPU implementer" in fields:
        arch, flags = "aarch64", fields.get("Features", "").split()
    else:
        arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower() or None)
        flags = []
    mem_gb = None
    for line in _read_text(proc_root / "meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_gb = round(int(line.split()[1]) / 2**20, 1)  # kB -> GiB
    from harness.measure.environment import INFERENCE_FLAGS

    return arch, [f for f in INFERENCE_FLAGS if f in flags], mem_gb


def _longest(fragments_by_target: dict[str, list[str]], haystack: list[str]) -> str | None:
    hits = [(len(f), name) for name, frags in fragments_by_target.items() for f in frags
            if any(f.lower() in h.lower() for h in haystack if h)]
    return max(hits)[1] if hits else None


def detect_target(
    device_tree_root: Path = Path("/proc/device-tree"),
    proc_root: Path = Path("/proc"),
    nvidia_smi: Callable[[], str | None] = run_nvidia_smi,
    targets_dir: Path = TARGETS_DIR,
    machine: str | None = None,
) -> Detection:
    """Which profile fits this machine: a Jetson board first, then an NVIDIA GPU, then the CPU."""
    profiles = {p.name: p for p in list_targets(targets_dir)}
    model = read_board_model(Path(device_tree_root) / "model")
    compatible = _read_text(Path(device_tree_root) / "compatible").split("\x00")
    arch, flags, mem_gb = _cpu_facts(Path(proc_root), machine or platform.machine())
    facts: dict[str, Any] = dict(board_model=model, cpu_arch=arch, cpu_flags=flags, memory_gb=mem_gb)
    jetsons = {n: p for n, p in profiles.items() if p.kind == "jetson"}
    name = _longest({n: p.board_models for n, p in jetsons.items()}, [model or ""])
    how = f"board model {model!r}"
    if name is None:
        name = _longest({n: p.compatible for n, p in jetsons.items()}, compatible)
        how = f"device-tree compatible {' '.join(c for c in compatible if c)!r}"
    if name is not None:
        return Detection(name, f"{how} matches {name}", **facts)
    if (model and "jetson" in model.lower()) or any(c.startswith("nvidia,tegra") for c in compatible):
        return Detection(None, f"a Jetson board ({model or 'unknown model'}) that no profile in {targets_dir} describes",
                         **facts)
    gpus = parse_nvidia_smi(nvidia_smi())
    if gpus:
        gpu = gpus[0]
        candidates = sorted((p for p in profiles.values() if p.kind == "gpu"), key=lambda p: _cc(_profile_cc(p)))
        if not candidates:
            return Detection(None, f"GPU {gpu['name']} but no gpu profile in {targets_dir}", gpus=gpus, **facts)
        cc = gpu["compute_capability"]
        fitting = [p for p in candidates if cc and _cc(_profile_cc(p)) <= _cc(cc)]
        chosen = fitting[-1] if fitting else candidates[0]
        warnings = [] if fitting else [
            f"{gpu['name']} has compute capability {cc or 'unknown (nvidia-smi did not say)'}, not the "
            f"{_profile_cc(chosen)} or newer that {chosen.name} describes: its precisions and sparse "
            "tensor cores may not be there"]
        return Detection(chosen.name, f"nvidia-smi reports {gpu['name']} (compute capability "
                         f"{gpu['compute_capability'] or 'unknown'})", gpus=gpus, warnings=warnings, **facts)
    cpus = [p for p in profiles.values() if p.kind == "cpu" and p.cpu_arch == arch]
    if cpus:
        return Detection(cpus[0].name, f"no Jetson board and no NVIDIA GPU; CPU architecture {arch}", **facts)
    return Detection(None, f"no Jetson board, no NVIDIA GPU and no profile for CPU architecture {arch}", **facts)


def _profile_cc(profile: TargetSpec) -> str:
    """A gpu profile's compute capability ("" when the profile names none)."""
    return profile.gpu.compute_capability if profile.gpu else ""


def _cc(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())
