"""Benchmark: is int8 really faster on the CPU, with onnxruntime and with OpenVINO? (docs/compression.md)

For each model, side by side in one run: fp32; onnxruntime's default ``quantize_static`` output
(QDQ, int8 activations and weights, per-tensor, MinMax, no pre-processing); the harness's int8
recipe (``harness.compress.quantize.quantize_int8_static`` with the default QuantSpec);
the harness recipe with int8 instead of uint8 activations (to show what that choice buys);
channel pruning at ratio 0.5 (torch-pruning, round_to 8) in fp32 and with the harness's int8.

Every file runs on two runtimes with the harness's runner settings, batch 1, 2 threads:
onnxruntime's CPUExecutionProvider (2 intra-op threads, ORT_ENABLE_ALL) and, when openvino is
installed, the harness's ``openvino`` runner (OpenVINO CPU plugin, static shape, LATENCY hint,
2 inference threads, fp32 inference precision). All the (variant, runtime) pairs of a model are
timed in alternating blocks of 0.5 s for the whole budget, so load from other processes falls on
every one alike; the table shows medians (and 10th percentiles, less sensitive to that load) and
their ratios to **onnxruntime fp32** of the same model, for both runtimes.
Digits-trained models also get top-1 and worst-class recall on the digits evaluation split, on
each runtime.

The project's speed targets (``TARGETS``) are judged on paired ratios: in each round, onnxruntime
fp32's block median over the pair's, then the median over rounds with a 95 % bootstrap interval; ``met``
needs the whole interval at or above the target, ``not met`` the whole interval below it, and
anything else, or fewer than ``MIN_ROUNDS`` rounds, is ``undecided`` (this run cannot tell on a
machine that other jobs share).

Models: ``small-cnn`` (the default run's, digits 32x32), ``resnet18`` (the zoo's CIFAR-style
ResNet-18, digits 32x32, trained ``--resnet-epochs``; baselines are cached under ``--cache``),
``resnet18-imagenet`` (ImageNet-style stem at 3x224x224, random weights: latency only).

    python benchmarks/int8_cpu.py
    python benchmarks/int8_cpu.py --models small-cnn --seconds 10
    python benchmarks/int8_cpu.py --runtimes onnxruntime   # without the OpenVINO columns
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

THREADS = 2
MIN_ROUNDS = 8  # fewest paired rounds a target verdict is given on
RUNTIMES = ("onnxruntime", "openvino")
#: the project's speed targets: minimum p50 ratio to onnxruntime fp32 of the same model,
#: per (model, variant, runtime)
TARGETS = {
    ("small-cnn", "int8 harness", "onnxruntime"): 1.5, ("small-cnn", "channel-0.5", "onnxruntime"): 1.5,
    ("resnet18", "int8 harness", "onnxruntime"): 2.0, ("resnet18", "channel-0.5", "onnxruntime"): 2.0,
    ("resnet18-imagenet", "int8 harness", "onnxruntime"): 2.0, ("resnet18-imagenet", "channel-0.5", "onnxruntime"): 2.0,
    ("resnet18-imagenet", "int8 harness", "openvino"): 3.5,
}


def _dataset(name: str):
    from harness.data import DATASETS
    from harness.data.base import Dataset, Split
    from harness.experiment import load_experiment

    if name != "resnet18-imagenet":
        spec = load_experiment(None)  # the embedded default's digits: 32x32, long-tailed
        return DATASETS.get(spec.dataset.name)(spec.dataset, spec.seed), spec
    rng = np.random.default_rng(0)

    def split(n: int, label: str) -> Split:
        return Split(label, rng.standard_normal((n, 3, 224, 224)).astype(np.float32), rng.integers(0, 1000, n), np.arange(n))

    names = [str(i) for i in range(1000)]
    return Dataset("random-224", names, split(8, "train"), split(32, "calibration"), split(8, "evaluation")), None


def _baseline(name: str, dataset, spec, epochs: int, cache: Path):
    import torch

    from harness.config import ModelSpec, TrainSpec, spec_hash
    from harness.models.train import train_baseline
    from harness.models.zoo import resnet18
    from harness.progress import ProgressReporter

    if name == "resnet18-imagenet":
        torch.manual_seed(0)
        model = resnet18(3, 1000, stem="imagenet").eval()
        with torch.no_grad():  # non-trivial BN statistics, so folding and calibration see realistic ranges
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        return model
    train = spec.train if name == "small-cnn" else TrainSpec(epochs=epochs, batch_size=64, lr=3e-3)
    model, _, cached = train_baseline(
        ModelSpec(name=name), train, dataset, spec_hash(spec.dataset, spec.seed), spec.seed, cache / "models", ProgressReporter()
    )
    print(f"  {name}: baseline {'loaded from cache' if cached else f'trained ({train.epochs} epochs)'}", flush=True)
    return model


def _export(model, example: np.ndarray, path: Path) -> Path:
    from harness.export.onnx import export_onnx, export_program

    export_onnx(export_program(model, example, path.with_suffix(".pt2")), example, path)
    return path


def _ort_default(fp32: Path, out: Path, calibration_x: np.ndarray) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calibration_x[i : i + 1] for i in range(len(calibration_x)))

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {"input": x}

    quantize_static(str(fp32), str(out), Reader())
    return out


def build_variants(name: str, args, work: Path, reduce_range: bool) -> tuple[dict[str, Path], object]:
    """``reduce_range``: 7-bit weights, as the harness chooses on a CPU without VNNI."""
    from harness.compress.prune import channel_prune
    from harness.compress.quantize import quantize_int8_static
    from harness.config import QuantSpec
    from harness.progress import ProgressReporter

    dataset, spec = _dataset(name)
    model = _baseline(name, dataset, spec, args.resnet_epochs, args.cache)
    example, calib = dataset.evaluation.x[:1], dataset.calibration.x[: args.calibration]
    files = {"fp32": _export(model, example, work / f"{name}.onnx")}
    files["int8 ort-default"] = _ort_default(files["fp32"], work / f"{name}.ort.onnx", calib)
    files["int8 harness"] = work / f"{name}.int8.onnx"
    quantize_int8_static(files["fp32"], files["int8 harness"], calib, QuantSpec(), reduce_range=reduce_range)
    files["int8 harness, s8 act."] = work / f"{name}.s8.onnx"
    quantize_int8_static(files["fp32"], files["int8 harness, s8 act."], calib, QuantSpec(activation_type="int8"), reduce_range=reduce_range)
    finetune = 0 if name == "resnet18-imagenet" else args.finetune_epochs
    pruned = channel_prune(model, 0.5, {"finetune_epochs": finetune, "round_to": 8}, dataset, 0, ProgressReporter(), "channel-0.5")
    files["channel-0.5"] = _export(pruned.model, example, work / f"{name}.channel.onnx")
    files["channel-0.5 + int8"] = work / f"{name}.channel.int8.onnx"
    quantize_int8_static(files["channel-0.5"], files["channel-0.5 + int8"], calib, QuantSpec(), reduce_range=reduce_range)
    return files, dataset


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"input": x})[0]


def _openvino(path: Path, stack):
    """The harness's openvino runner on ``path`` (its compile settings, ``THREADS`` threads), as a callable."""
    from harness.runtimes.openvino import OpenVinoRunner

    return stack.enter_context(OpenVinoRunner(path, threads=THREADS)).infer


def time_interleaved(runners: dict, x: np.ndarray, seconds: float,
                     block_s: float = 0.5) -> tuple[dict, dict]:
    """Latency samples (ms) per (variant, runtime) key, and the median of each of its blocks, round
    by round: rounds of one ``block_s`` block per key until ``seconds`` (and at least 20 samples each).

    Blocks, not single runs, alternate: onnxruntime's intra-op threads spin for a while after a
    run, so a session timed right after another one's run competes with its spinning threads
    (measured: the same file timed twice in one single-run round-robin differed by 30 %). The
    first 2 runs of each block are discarded for the same reason. Block ``i`` of every key
    belongs to round ``i``, timed within a few seconds of each other, which is what
    :func:`ratio_verdict` pairs.
    """
    samples: dict = {k: [] for k in runners}
    blocks: dict = {k: [] for k in runners}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or min(map(len, samples.values())) < 20:
        for k, run in runners.items():
            for _ in range(2):
                run(x)
            block: list[float] = []
            end = time.perf_counter() + block_s
            while True:
                t0 = time.perf_counter()
                run(x)
                t1 = time.perf_counter()
                block.append((t1 - t0) * 1e3)
                if t1 > end:
                    break
            samples[k].extend(block)
            blocks[k].append(float(np.median(block)))
    return {k: np.asarray(v) for k, v in samples.items()}, {k: np.asarray(v) for k, v in blocks.items()}


def ratio_verdict(base_blocks: np.ndarray, blocks: np.ndarray, goal: float) -> tuple[float, float | None, float | None, str]:
    """Median over rounds of (fp32 block median / variant block median), its 95 % bootstrap
    interval over rounds, and ``met`` (interval above ``goal``), ``not met`` (below) or
    ``undecided`` (the interval contains it): one run's ratio moves with other jobs' load, the
    interval says whether this run can tell."""
    from harness.metrics.bootstrap import bootstrap_ci

    ci = bootstrap_ci(lambda r: float(np.median(r)), base_blocks / blocks, n_boot=2000, seed=0)
    if ci.low is None or ci.high is None:
        return float(ci.estimate), None, None, "undecided"
    if len(blocks) < MIN_ROUNDS:  # a bootstrap over 2 or 3 rounds is only their min and max
        return float(ci.estimate), ci.low, ci.high, f"undecided (fewer than {MIN_ROUNDS} rounds: raise --seconds)"
    verdict = "met" if ci.low >= goal else "not met" if ci.high < goal else "undecided"
    return float(ci.estimate), ci.low, ci.high, verdict


def accuracy(run, dataset) -> tuple[float, float]:
    from harness.metrics import accuracy_stats

    x, y = dataset.evaluation.x, dataset.evaluation.y
    logits = np.concatenate([run(x[i : i + 64]) for i in range(0, len(x), 64)])
    stats = accuracy_stats(y, logits.argmax(1), dataset.class_names)
    return stats.top1, stats.worst_class_recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="small-cnn,resnet18,resnet18-imagenet")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES),
                        help="onnxruntime, openvino or both (openvino is left out when it is not installed)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timing budget per model (all variants together)")
    parser.add_argument("--resnet-epochs", type=int, default=12,
                        help="training epochs of the digits ResNet-18 (cached; ~15 min here the first time)")
    parser.add_argument("--finetune-epochs", type=int, default=2, help="fine-tuning after channel pruning (the default run uses 2)")
    parser.add_argument("--calibration", type=int, default=200, help="calibration samples")
    parser.add_argument("--block-seconds", type=float, default=0.5, help="length of one variant's timing block in a round")
    parser.add_argument("--cache", type=Path, default=Path("results/cache"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    import onnxruntime as ort

    from harness.measure.environment import INFERENCE_FLAGS, capture_environment, cpu_has_vnni
    from harness.runtimes.openvino import OpenVinoRunner, compile_config

    runtimes = [r for r in args.runtimes.split(",") if r]
    if unknown := set(runtimes) - set(RUNTIMES):
        parser.error(f"unknown runtime(s) {', '.join(sorted(unknown))}; choose from {', '.join(RUNTIMES)}")
    if "openvino" in runtimes and (why := OpenVinoRunner.unavailable_reason()):
        print(f"openvino columns left out: {why}")
        runtimes.remove("openvino")
    env = capture_environment()
    vnni = cpu_has_vnni(env.cpu_flags)
    print(f"onnxruntime {ort.__version__}, CPU EP, {THREADS} threads, batch 1, ORT_ENABLE_ALL, interleaved medians")
    if "openvino" in runtimes:
        import openvino as ov

        print(f"openvino {ov.get_version()}, CPU plugin, {compile_config(THREADS)}")
    print(f"CPU: {env.cpu_model}, int8 dot-product instructions (VNNI): {'yes' if vnni else 'no'}")
    print(f"CPU flags that decide the kernels: {' '.join(f for f in INFERENCE_FLAGS if f in env.cpu_flags) or 'none'}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(f"\n== {name}", flush=True)
            files, dataset = build_variants(name, args, Path(tmp), reduce_range=not vnni)
            with ExitStack() as stack:
                runners = {}
                for k, p in files.items():
                    for rt in runtimes:
                        runners[(k, rt)] = _session(p) if rt == "onnxruntime" else _openvino(p, stack)
                base = ("fp32", runtimes[0])
                samples, blocks = time_interleaved(runners, dataset.evaluation.x[:1], args.seconds, args.block_seconds)
                p50 = {k: float(np.median(v)) for k, v in samples.items()}
                p10 = {k: float(np.percentile(v, 10)) for k, v in samples.items()}
                scored = name != "resnet18-imagenet"
                acc = {k: accuracy(run, dataset) for k, run in runners.items()} if scored else {}
                print(f"  p50 / p10 in ms; x = speed-up over {base[1]} fp32 of this model"
                      + ("; top-1 and worst-class recall in %, d = change against fp32 on the same runtime" if scored else ""))
                header = f"  {'variant':22s} {'MB':>6s}"
                for rt in runtimes:
                    header += f" | {rt[:11]:>11s} p50 {'x':>6s} {'p10':>7s} {'x':>6s}"
                    if scored:
                        header += f" {'top-1':>6s} {'d':>5s} {'worst':>6s} {'d':>5s}"
                print(header)
                for k in files:
                    line = f"  {k:22s} {files[k].stat().st_size / 2**20:6.2f}"
                    for rt in runtimes:
                        key = (k, rt)
                        row = {"model": name, "variant": k, "runtime": rt, "p50_ms": p50[key],
                               "speedup_p50": p50[base] / p50[key], "p10_ms": p10[key], "speedup_p10": p10[base] / p10[key],
                               "n_samples": len(samples[key]), "file_mb": files[k].stat().st_size / 2**20}
                        line += (f" | {p50[key]:15.3f} {row['speedup_p50']:5.2f}x {p10[key]:7.3f} {row['speedup_p10']:5.2f}x")
                        if scored:
                            (top1, worst), (top1_0, worst_0) = acc[key], acc[("fp32", rt)]
                            row.update(top1=top1, worst_class_recall=worst, d_top1=top1 - top1_0, d_worst=worst - worst_0)
                            line += f" {100 * top1:6.1f} {100 * row['d_top1']:+5.1f} {100 * worst:6.1f} {100 * row['d_worst']:+5.1f}"
                        goal = TARGETS.get((name, k, rt))
                        if goal is not None:
                            ratio, low, high, verdict = ratio_verdict(blocks[base], blocks[key], goal)
                            row.update(target_ratio=goal, paired_ratio=ratio, paired_ratio_ci=[low, high], verdict=verdict)
                        results.append(row)
                    print(line, flush=True)
                for row in results:
                    if row["model"] == name and "target_ratio" in row:
                        low, high = row["paired_ratio_ci"]
                        interval = f"[{low:.2f}, {high:.2f}]" if low is not None else "[undefined]"
                        print(f"  target {row['variant']} on {row['runtime']} >= {row['target_ratio']:g}x {base[1]} fp32: "
                              f"paired ratio {row['paired_ratio']:.2f}x, 95% interval {interval} over "
                              f"{len(blocks[base])} rounds: {row['verdict']}")
                int8 = [r for r in results if r["model"] == name and "int8" in r["variant"]]
                if int8:
                    best = max(int8, key=lambda r: r["speedup_p50"])
                    close = [r for r in int8 if r.get("d_top1", 0.0) >= -0.01]
                    print(f"  fastest int8 point: {best['variant']} on {best['runtime']}, {best['speedup_p50']:.2f}x"
                          + (f" (top-1 {100 * best['d_top1']:+.1f})" if scored else ""))
                    if scored and close:
                        best = max(close, key=lambda r: r["speedup_p50"])
                        print(f"  fastest int8 point within 1 top-1 point of fp32: {best['variant']} on "
                              f"{best['runtime']}, {best['speedup_p50']:.2f}x (top-1 {100 * best['d_top1']:+.1f})")
            print(f"  load average during timing: {os.getloadavg()[0]:.1f} (1 min)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
