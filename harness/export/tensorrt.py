"""ONNX -> TensorRT engine through the TensorRT Python API, on TensorRT 10.x and 11.x.

The ``tensorrt`` module is an argument (tests pass a recording fake); :func:`load_tensorrt`
imports the real one at call time, never at import. A version gate,
``int(trt.__version__.split(".")[0])``, picks the path (shared/research/deploy.md 2.1, 2.5):

* 10.x: a pre-typed ONNX (fp16 casts, Q/DQ) builds with the ``STRONGLY_TYPED`` network flag;
  the legacy ``FP16`` / ``INT8`` builder flags are used instead only when asked for.
* 11.x: every network is strongly typed and the precision builder flags are gone; asking for
  one is refused with the fix (convert the ONNX) rather than silently building fp32.

Both: ``SPARSE_WEIGHTS`` for 2:4 models, a workspace limit, one optimization profile per
batch size (min = opt = max, which DLA needs), DLA core + ``GPU_FALLBACK`` when asked, a
persistent timing cache per (device, TensorRT version), detailed profiling verbosity so the
inspector can say what each layer runs. Flags are looked up by name, never by integer (the
integers changed between 10 and 11). Engines are cached under a key hashing the ONNX
sha256, the TensorRT version, the device name, the flags and the profiles.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import deps
from harness.atomic import atomic_write_bytes
from harness.errors import ConfigError, InputError, MissingDependency

if TYPE_CHECKING:
    from harness.records import EngineInfo

SUPPORTED_MAJORS = (10, 11)
LEGACY_PRECISION_FLAGS = ("FP16", "INT8")  # TensorRT 10 only
TENSORRT_HINT = ("x86_64 or JetPack 7.2.2+: pip install tensorrt-cu13 (or tensorrt-cu12); JetPack 6: apt install "
                 "python3-libnvinfer and a venv made with --system-site-packages")


def load_tensorrt() -> Any:
    """The real ``tensorrt`` module, or :class:`MissingDependency` with how to install it."""
    if not deps.is_available("tensorrt"):
        exc = MissingDependency("tensorrt", purpose="TensorRT engines")
        exc.hint = TENSORRT_HINT
        raise exc
    import tensorrt

    return tensorrt


def tensorrt_major(trt: Any) -> int:
    """The version gate: the installed major, refused unless the harness has a path for it."""
    version = str(getattr(trt, "__version__", "unknown"))
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else -1
    if major not in SUPPORTED_MAJORS:
        exc = MissingDependency(f"tensorrt 10.x or 11.x (found {version})", purpose="TensorRT engines")
        exc.hint = TENSORRT_HINT
        raise exc
    return major


@dataclass(frozen=True)
class EngineSpec:
    """What to build: the batch sizes to profile and the options the builder gets."""

    batch_sizes: tuple[int, ...]
    input_shape: tuple[int, ...] | None = None  # C, H, W when the ONNX leaves them symbolic
    precision_flags: tuple[str, ...] = ()  # legacy builder flags (TensorRT 10 only); () = strongly typed
    sparse_weights: bool = False  # the weights are 2:4 sparse: let TensorRT pick sparse kernels
    workspace_mb: int = 1024
    dla_core: int | None = None
    builder_optimization_level: int | None = None

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(int(b) <= 0 for b in self.batch_sizes):
            raise ConfigError(f"engine batch sizes must be positive, got {list(self.batch_sizes)}")
        unknown = [f for f in self.precision_flags if f not in LEGACY_PRECISION_FLAGS]
        if unknown:
            raise ConfigError(f"unknown precision flag(s) {unknown}; known: {', '.join(LEGACY_PRECISION_FLAGS)}")
        if self.workspace_mb <= 0 or (self.dla_core is not None and self.dla_core < 0):
            raise ConfigError("workspace_mb must be positive and dla_core non-negative")


def engine_spec_for_target(target, batch_sizes, *, sparse_weights: bool, use_dla: bool = False,
                           dla_core: int = 0, precision_flags: tuple[str, ...] = (), workspace_mb: int | None = None,
                           builder_optimization_level: int | None = None) -> EngineSpec:
    """An :class:`EngineSpec` that respects a :class:`~harness.targets.TargetSpec`."""
    if use_dla and (target.dla is None or dla_core >= target.dla.cores):
        raise ConfigError(f"target {target.name} has no DLA core {dla_core}")
    sparse = sparse_weights and bool(target.gpu and target.gpu.sparse_tensor_cores)
    workspace = workspace_mb or (512 if target.memory.unified else 1024)  # unified memory is shared with the CPU
    return EngineSpec(tuple(batch_sizes), precision_flags=precision_flags, sparse_weights=sparse,
                      workspace_mb=workspace, dla_core=dla_core if use_dla else None,
                      builder_optimization_level=builder_optimization_level)


@dataclass(frozen=True)
class BuildPlan:
    """Everything that decides the engine, by name: hashed into the cache key."""

    trt_version: str
    major: int
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    input_name: str
    profiles: tuple[tuple[tuple[int, ...], ...], ...]  # (min, opt, max) per profile
    workspace_bytes: int
    dla_core: int | None
    builder_optimization_level: int | None


def optimization_profiles(batch_sizes, onnx_shape: tuple[int, ...], chw: tuple[int, ...] | None):
    """One static profile per batch size; errors say what in the ONNX prevents them."""
    batch, dims = onnx_shape[0], tuple(onnx_shape[1:])
    if any(d < 0 for d in dims):
        if chw is None:
            raise ConfigError(f"the ONNX input shape {list(onnx_shape)} leaves C/H/W symbolic: give input_shape")
        dims = tuple(chw)
    elif chw is not None and tuple(chw) != dims:
        raise ConfigError(f"input_shape {list(chw)} does not match the ONNX input {list(onnx_shape)}")
    sizes = sorted({int(b) for b in batch_sizes})
    if batch >= 0:
        if sizes != [batch]:
            raise ConfigError(f"the ONNX input has a static batch of {batch}; export it with a dynamic batch "
                              f"to build profiles for batch sizes {sizes}")
        return ()
    return tuple(((b, *dims),) * 3 for b in sizes)


def plan_build(trt: Any, spec: EngineSpec, input_name: str, onnx_shape: tuple[int, ...]) -> BuildPlan:
    """Map the spec onto this TensorRT's flags (the version gate); refuse what it cannot do."""
    major = tensorrt_major(trt)
    if major >= 11:
        if spec.precision_flags:
            raise ConfigError(
                f"TensorRT {trt.__version__} is strongly typed and has no {'/'.join(spec.precision_flags)} builder "
                "flag: precision comes from the ONNX. Convert it first (fp16: python -m modelopt.onnx.autocast; "
                "int8: Q/DQ nodes) and build without precision flags")
        network: tuple[str, ...] = ()  # STRONGLY_TYPED is implied (and deprecated) on 11.x
    else:
        network = () if spec.precision_flags else ("STRONGLY_TYPED",)
    release = tuple(int(p) for p in re.findall(r"\d+", str(trt.__version__))[:3])
    if spec.dla_core is not None and (10, 8) <= release < (11, 4, 1):
        raise ConfigError(f"TensorRT {trt.__version__} cannot use DLA: 10.x has it up to 10.7, 11.x from 11.4.1 "
                          "(JetPack 7.2.2+, AGX Orin)")
    builder = [*spec.precision_flags, *(["SPARSE_WEIGHTS"] if spec.sparse_weights else []),
               *(["GPU_FALLBACK"] if spec.dla_core is not None else [])]
    for enum, names in (("NetworkDefinitionCreationFlag", network), ("BuilderFlag", builder)):
        missing = [n for n in names if not hasattr(getattr(trt, enum), n)]
        if missing:
            raise ConfigError(f"TensorRT {trt.__version__} has no {enum}.{missing[0]}")
    return BuildPlan(str(trt.__version__), major, network, tuple(builder), input_name,
                     optimization_profiles(spec.batch_sizes, onnx_shape, spec.input_shape),
                     spec.workspace_mb * 2**20, spec.dla_core, spec.builder_optimization_level)


def engine_cache_key(onnx_sha256: str, plan: BuildPlan, device_name: str) -> str:
    payload = {"onnx_sha256": onnx_sha256, "device": device_name, **asdict(plan)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()[:24]


def timing_cache_path(cache_dir: Path, trt_version: str, device_name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", device_name).strip("-").lower()
    return Path(cache_dir) / f"timing-{slug}-trt{trt_version}.cache"


@dataclass(frozen=True)
class EngineBuild:
    path: Path
    key: str
    cache_hit: bool
    plan: BuildPlan
    device_name: str
    timing_cache: Path
    layers: dict | None = None  # EngineReport.summary() with every layer
    sparsity: dict = field(default_factory=dict)  # the "(Sparsity)" build-log lines, parsed


#: quantization recipes whose ONNX TensorRT cannot take: onnxruntime's int8 QDQ uses uint8 activations
#: (TensorRT wants symmetric int8) or dynamic quantization (no activation scales at all)
_ORT_ONLY_RECIPES = {"int8": "onnxruntime's int8 recipe (uint8 activations, CPU Q/DQ placement)",
                     "int8-dynamic": "dynamic int8 (no activation scales)"}


def engine_source(files: dict[str, Path], quant_recipe: str | None) -> tuple[str | None, str | None]:
    """Which of a variant's files its TensorRT engine is built from: ``(format, None)`` or ``(None, why not)``.

    The TensorRT-placement QDQ file (``quantize.target = "tensorrt"``) wins; an fp32 or fp16 ONNX is
    used as it is (strongly typed). onnxruntime's int8 ONNX is refused: build the int8 variant with
    ``target = "tensorrt"`` instead.
    """
    from harness.export.formats import FORMATS

    sources = [f for f in FORMATS if f.engine_source and f.name in files]
    for fmt in sources:
        if fmt.tensorrt_quantized:
            return fmt.name, None
    if quant_recipe in _ORT_ONLY_RECIPES:
        return None, (f"its ONNX is {_ORT_ONLY_RECIPES[quant_recipe]}, which TensorRT does not run as int8; "
                      "add a [[quantize]] with target = \"tensorrt\" for a TensorRT int8 engine")
    if sources:
        return sources[0].name, None
    return None, "it has no ONNX file to build an engine from"


def engine_info(build: EngineBuild, source_format: str) -> EngineInfo:
    """The stored record of a build: flags, cache key and what the inspector and build log say."""
    from harness.records import EngineInfo

    layers = build.layers or {}
    has_layers = "n_layers" in layers
    count = (lambda key: int(layers[key]) if has_layers else None)  # noqa: E731
    eligible = build.sparsity.get("eligible") if build.sparsity.get("seen") else None
    return EngineInfo(
        trt_version=build.plan.trt_version, device=build.device_name, cache_key=build.key, cache_hit=build.cache_hit,
        source_format=source_format, network_flags=list(build.plan.network_flags),
        builder_flags=list(build.plan.builder_flags), engine_mb=build.path.stat().st_size / 2**20,
        n_layers=count("n_layers"), n_int8_layers=count("n_int8_layers"), n_fp16_layers=count("n_fp16_layers"),
        n_sparse_layers=count("n_sparse_layers"), n_sparse_eligible=None if eligible is None else len(eligible),
    )


def onnx_input(path: Path) -> tuple[str, tuple[int, ...]]:
    """Name and shape (-1 for a symbolic dimension) of the ONNX graph's single input."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InputError(f"{path}: expected one graph input, found {len(inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    return inputs[0].name, tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)


def _capturing_logger(trt: Any) -> Any:
    class CapturingLogger(trt.ILogger):
        """Keeps every message above VERBOSE: the "(Sparsity)" lines and the errors."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.lines: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity != trt.ILogger.Severity.VERBOSE and len(self.lines) < 5000:
                self.lines.append(str(msg))

    return CapturingLogger()


def build_engine(onnx_path: Path, spec: EngineSpec, cache_dir: Path, *, device_name: str,
                 trt: Any = None) -> EngineBuild:
    """Build (or reuse from ``cache_dir``) the engine of ``onnx_path`` for ``spec``."""
    trt = trt if trt is not None else load_tensorrt()
    name, shape = onnx_input(onnx_path)
    plan = plan_build(trt, spec, name, shape)
    from harness.export.inspect import file_sha256

    key = engine_cache_key(file_sha256(onnx_path), plan, device_name)
    cache_dir = Path(cache_dir)
    engine_path, meta_path = cache_dir / f"{key}.engine", cache_dir / f"{key}.json"
    timing = timing_cache_path(cache_dir, plan.trt_version, device_name)
    if engine_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return EngineBuild(engine_path, key, True, plan, device_name, timing, meta["layers"], meta["sparsity"])

    logger = _capturing_logger(trt)
    builder = trt.Builder(logger)
    bits = 0
    for flag in plan.network_flags:
        bits |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, flag))
    network = builder.create_network(bits)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise InputError(f"TensorRT {plan.trt_version} cannot parse {onnx_path}: {errors or 'no detail'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if plan.builder_optimization_level is not None:
        config.builder_optimization_level = plan.builder_optimization_level
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if plan.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
    for lo, opt, hi in plan.profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape(plan.input_name, lo, opt, hi)
        config.add_optimization_profile(profile)
    cache = config.create_timing_cache(timing.read_bytes() if timing.exists() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        tail = " | ".join(logger.lines[-3:]) or "no detail"
        raise InputError(f"TensorRT {plan.trt_version} could not build {onnx_path}: {tail}",
                         hint="on a Jetson, 'Could not find any implementation' usually means out of memory: "
                              "lower workspace_mb or the builder optimization level")
    plan_bytes = bytes(serialized)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(timing, bytes(config.get_timing_cache().serialize()))
    sparsity = parse_sparsity_log(logger.lines)
    report = parse_engine_information(inspect_engine(trt, plan_bytes, logger), sparse_layers=sparsity.picked)
    layers, sparsity_dict = report.summary(), sparsity.to_dict()
    _atomic_write(engine_path, plan_bytes)
    _atomic_write(meta_path, json.dumps({"key": key, "device": device_name, "plan": asdict(plan), "layers": layers,
                                         "sparsity": sparsity_dict}, indent=1).encode())
    return EngineBuild(engine_path, key, False, plan, device_name, timing, layers, sparsity_dict)


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


# ---------------------------------------------------------------------------- what the engine runs

_SPARSITY_LINE = re.compile(r"\(Sparsity\) (Layers eligible for sparse math|TRT inference plan picked sparse "
                            r"implementation for layers):(.*)$")
_DTYPES = {"float": "fp32", "fp32": "fp32", "half": "fp16", "fp16": "fp16", "bfloat16": "bf16", "bf16": "bf16",
           "int8": "int8", "fp8": "fp8", "int4": "int4", "fp4": "fp4", "int32": "int32", "int64": "int64",
           "uint8": "uint8", "bool": "bool"}
_OTHER_PROFILE = re.compile(r"\[profile [1-9]\d*\]")  # layers of profiles 1.. repeat those of profile 0


@dataclass(frozen=True)
class SparsityLog:
    """The builder's two "(Sparsity)" INFO lines: which layers could, and which do, run sparse."""

    seen: bool
    eligible: tuple[str, ...] = ()
    picked: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


def parse_sparsity_log(lines) -> SparsityLog:
    found: dict[str, tuple[str, ...]] = {}
    for line in lines:
        match = _SPARSITY_LINE.search(line.rstrip())
        if match:
            kind = "eligible" if match.group(1).startswith("Layers eligible") else "picked"
            found[kind] = tuple(n.strip() for n in match.group(2).split(",") if n.strip())
    return SparsityLog(bool(found), found.get("eligible", ()), found.get("picked", ()))


@dataclass(frozen=True)
class LayerInfo:
    name: str
    type: str
    precision: str | None  # of the layer's first input (of its first output when it has none)
    tactic: str | None
    sparse: bool  # the tactic name says sparse, or the build log lists the layer as picked sparse


@dataclass(frozen=True)
class EngineReport:
    schema: str  # "tensorrt-10" (Bindings, Format/Datatype) or "tensorrt-11" (I/O Tensors, DataType)
    layers: tuple[LayerInfo, ...]
    io_tensors: tuple[str, ...]

    def summary(self) -> dict:
        counts: dict[str, int] = {}
        for layer in self.layers:
            counts[layer.precision or "unknown"] = counts.get(layer.precision or "unknown", 0) + 1
        return {"schema": self.schema, "n_layers": len(self.layers), "n_int8_layers": counts.get("int8", 0),
                "n_fp16_layers": counts.get("fp16", 0), "n_sparse_layers": sum(x.sparse for x in self.layers),
                "precision_counts": counts, "io_tensors": list(self.io_tensors),
                "layers": [asdict(x) for x in self.layers]}


def _precision(tensor: dict) -> str | None:
    if "DataType" in tensor:  # 11.x
        return _DTYPES.get(str(tensor["DataType"]).lower(), str(tensor["DataType"]).lower())
    for token in re.findall(r"[A-Za-z0-9]+", str(tensor.get("Format/Datatype", ""))):  # 10.x
        if token.lower() in _DTYPES:
            return _DTYPES[token.lower()]
    return None


def parse_engine_information(info: str | dict, sparse_layers=()) -> EngineReport:
    """Per-layer facts from ``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)``."""
    data = json.loads(info) if isinstance(info, str) else info
    raw = data.get("Layers") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise InputError("engine information has no 'Layers' list")
    if raw and not isinstance(raw[0], dict):
        raise InputError("engine information lists layer names only: build with ProfilingVerbosity.DETAILED")
    if "I/O Tensors" in data:
        schema, io = "tensorrt-11", tuple(t["Name"] for t in data["I/O Tensors"])
    else:
        typed = any("DataType" in t for layer in raw for t in layer.get("Inputs", []) + layer.get("Outputs", []))
        schema, io = ("tensorrt-11" if typed else "tensorrt-10"), tuple(data.get("Bindings", []))
    picked = set(sparse_layers)
    layers = []
    for layer in raw:
        name = str(layer.get("Name", ""))
        if _OTHER_PROFILE.search(name) or layer.get("LayerType") in ("signal", "wait"):
            continue
        tensors = layer.get("Inputs") or layer.get("Outputs") or [{}]
        tactic = layer.get("TacticName") or (str(layer["TacticValue"]) if "TacticValue" in layer else None)
        layers.append(LayerInfo(name, str(layer.get("ParameterType") or layer.get("LayerType") or "unknown"),
                                _precision(tensors[0]), tactic,
                                "sparse" in (tactic or "").lower() or name in picked))
    return EngineReport(schema, tuple(layers), io)


def inspect_engine(trt: Any, plan_bytes: bytes, logger: Any) -> str:
    """The engine inspector's JSON for a serialized engine (needs the GPU it was built for)."""
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan_bytes)
    if engine is None:
        raise InputError("TensorRT could not deserialize the engine it just built")
    return engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
