"""Profile: where the time of fp32 and of the harness's int8 goes on the onnxruntime CPU EP.

For each model, the fp32 export and the harness's int8 recipe (default QuantSpec, ``reduce_range``
without VNNI) run with ``SessionOptions.enable_profiling`` in alternating 0.3 s blocks (so load from
other processes falls on both alike), and the per-node kernel times are reduced to medians. Printed:

- the operators of onnxruntime's optimised graph (``optimized_model_filepath``) of each file;
- every convolution side by side: fp32 ``Conv`` (NCHWc) against int8 ``QLinearConv`` (NHWC), its
  MACs, both kernel times and their ratio, and the MLAS path the int8 one takes on x86 (``sym``:
  the indirect symmetric-weight kernel, taken when C_in % 4 == 0 and C_out % 8 == 0, C_out >= 16;
  ``gemm``: im2col + u8s8 GEMM + requantisation, taken otherwise);
- the other operators per type (what int8 adds around the convolutions).

Profiling adds a few microseconds per node, so the totals are above the unprofiled latencies of
``benchmarks/int8_cpu.py``; compare kernels with kernels.

    python benchmarks/int8_profile.py
    python benchmarks/int8_profile.py --models small-cnn --seconds 10
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import int8_cpu  # noqa: E402  (benchmarks/ is not a package)


def _session(path: Path, profile_prefix: str | None = None, optimized: Path | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int8_cpu.THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def profile_interleaved(files: dict[str, Path], x: np.ndarray, seconds: float, work: Path, warmup: int = 20) -> dict:
    """Per variant: median model_run (ms), and the median kernel time (ms) of every node as {(op, node): ms}."""
    sessions = {k: _session(p, str(work / f"profile_{i}")) for i, (k, p) in enumerate(files.items())}
    feed = {"input": x}
    for s in sessions.values():
        for _ in range(warmup):
            s.run(None, feed)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for s in sessions.values():
            end = time.perf_counter() + 0.3
            while time.perf_counter() < end:
                s.run(None, feed)
    out = {}
    for k, s in sessions.items():
        events = json.loads(Path(s.end_profiling()).read_text())
        runs = [e for e in events if e.get("name") == "model_run"][warmup:]
        start = runs[0]["ts"]
        kernels = collections.defaultdict(list)
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
                kernels[(e["args"]["op_name"], e["name"][: -len("_kernel_time")])].append(e["dur"])
        out[k] = {
            "model_run_ms": float(np.median([e["dur"] for e in runs])) / 1e3,
            "runs": len(runs),
            "nodes": {key: float(np.median(v)) / 1e3 for key, v in kernels.items()},
        }
    return out


def optimized_ops(path: Path, work: Path) -> collections.Counter:
    import onnx

    target = work / f"{path.stem}.optimized.onnx"
    _session(path, optimized=target)
    return collections.Counter(n.op_type for n in onnx.load(str(target)).graph.node)


def conv_table(fp32: Path, prof_fp32: dict, prof_int8: dict) -> list[dict]:
    """One row per Conv of the fp32 export, with its fp32 (NCHWc) and int8 (QLinearConv) kernel times."""
    import onnx
    from onnx import numpy_helper

    from harness.export.report import inspect_model

    model = onnx.load(str(fp32))
    inits = {t.name: t for t in model.graph.initializer}
    consumers = collections.defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            consumers[i].append(n)
    macs = {layer.name: layer.macs for layer in inspect_model(fp32).layers}
    fp32_conv = {name: ms for (op, name), ms in prof_fp32["nodes"].items() if op == "Conv"}
    int8_conv = {name: ms for (op, name), ms in prof_int8["nodes"].items() if op == "QLinearConv"}
    rows = []
    for n in model.graph.node:
        if n.op_type != "Conv":
            continue
        w = numpy_helper.to_array(inits[n.input[1]]).shape
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        # onnxruntime names the fused NCHWc conv after the output of the last op it absorbed (Relu, Add)
        names = [n.output[0]] + [c.output[0] for c in consumers[n.output[0]] if c.op_type in ("Relu", "Add")]
        names += [c2.output[0] for c in consumers[n.output[0]] if c.op_type == "Add"
                  for c2 in consumers[c.output[0]] if c2.op_type == "Relu"]
        t32 = next((fp32_conv[f"{o}_nchwc"] for o in names if f"{o}_nchwc" in fp32_conv), None)
        t8 = next((ms for name, ms in int8_conv.items() if name == n.name or name.startswith(n.name + "_token")), None)
        c_in, c_out = w[1] * group, w[0]
        sym = group == 1 and (w[1] % 4 == 0) and c_out % 8 == 0 and c_out >= 16
        rows.append({"conv": n.name, "shape": f"{c_in}->{c_out} {w[2]}x{w[3]}", "mmacs": (macs.get(n.name) or 0) / 1e6,
                     "fp32_ms": t32, "int8_ms": t8, "int8_path": "sym" if sym else "gemm"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="small-cnn,resnet18-imagenet,resnet18")
    parser.add_argument("--seconds", type=float, default=20.0, help="profiling budget per model (both files together)")
    parser.add_argument("--resnet-epochs", type=int, default=12)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=Path("results/cache"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import onnxruntime as ort

    from harness.compress.quantize import quantize_int8_static
    from harness.config import QuantSpec
    from harness.measure.environment import capture_environment, cpu_has_vnni

    print(f"onnxruntime {ort.__version__}, CPU EP, {int8_cpu.THREADS} threads, batch 1, ORT_ENABLE_ALL, "
          "interleaved profiling, per-node medians")
    reduce_range = not cpu_has_vnni(capture_environment().cpu_flags)
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            print(f"\n== {name}", flush=True)
            dataset, spec = int8_cpu._dataset(name)
            model = int8_cpu._baseline(name, dataset, spec, args.resnet_epochs, args.cache)
            x = dataset.evaluation.x[:1]
            files = {"fp32": int8_cpu._export(model, x, work / f"{name}.onnx"), "int8": work / f"{name}.int8.onnx"}
            quantize_int8_static(files["fp32"], files["int8"], dataset.calibration.x[: args.calibration], QuantSpec(),
                                 reduce_range=reduce_range)
            for k, p in files.items():
                print(f"  optimised graph, {k}: {dict(optimized_ops(p, work))}")
            prof = profile_interleaved(files, x, args.seconds, work)
            rows = conv_table(files["fp32"], prof["fp32"], prof["int8"])
            print(f"  {'conv':16s} {'C_in->C_out k':16s} {'MMACs':>7s} {'fp32 ms':>8s} {'int8 ms':>8s} {'x':>6s}  int8 path")
            for r in rows:
                ratio = r["fp32_ms"] / r["int8_ms"] if r["fp32_ms"] and r["int8_ms"] else float("nan")
                print(f"  {r['conv']:16s} {r['shape']:16s} {r['mmacs']:7.1f} {r['fp32_ms'] or float('nan'):8.4f} "
                      f"{r['int8_ms'] or float('nan'):8.4f} {ratio:5.2f}x  {r['int8_path']}")
            totals = {}
            for k in files:
                by_op = collections.defaultdict(float)
                for (op, _), ms in prof[k]["nodes"].items():
                    by_op[op] += ms
                totals[k] = dict(sorted(by_op.items(), key=lambda t: -t[1]))
            conv32, conv8 = totals["fp32"].get("Conv", 0.0), totals["int8"].get("QLinearConv", 0.0)
            other32, other8 = sum(totals["fp32"].values()) - conv32, sum(totals["int8"].values()) - conv8
            print(f"  convolutions: fp32 {conv32:.3f} ms, int8 {conv8:.3f} ms ({conv32 / conv8:.2f}x); "
                  f"everything else: fp32 {other32:.3f} ms, int8 {other8:.3f} ms")
            for k in files:
                rest = ", ".join(f"{op} {ms:.3f}" for op, ms in totals[k].items() if op not in ("Conv", "QLinearConv"))
                print(f"  other ops, {k}: {rest}")
            fp32_ms, int8_ms = prof["fp32"]["model_run_ms"], prof["int8"]["model_run_ms"]
            print(f"  profiled model_run p50: fp32 {fp32_ms:.3f} ms, int8 {int8_ms:.3f} ms "
                  f"({fp32_ms / int8_ms:.2f}x; {prof['fp32']['runs']} / {prof['int8']['runs']} runs)")
            print(f"  load average during profiling: {os.getloadavg()[0]:.1f} (1 min)", flush=True)
            report[name] = {"convs": rows, "op_totals_ms": totals,
                            "model_run_ms": {k: prof[k]["model_run_ms"] for k in files}}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
