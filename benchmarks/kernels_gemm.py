"""Benchmark: the harness.kernels int8 and 2:4 GEMMs against cuBLAS and PyTorch's own kernels (docs/kernels.md).

Measured side by side in one process on one GPU, every contender timed the same way
(``triton.testing.do_bench``: L2 flushed between repetitions, median of the repetitions):

- int8: ``harness.kernels.int8_gemm`` (int32 out, and with the fused dequantise epilogue to fp16) against
  cuBLAS fp16 (``a16 @ w16.T``) and ``torch._int_mm`` (cuBLASLt int8, int32 out);
- 2:4: ``harness.kernels.sparse24`` (fp16 and int8) against the dense kernel of the same precision
  (cuBLAS fp16; our dense int8) and against PyTorch's semi-structured sparse matmul
  (``to_sparse_semi_structured``: cuSPARSELt or CUTLASS);
- shapes: every conv (as im2col GEMM: M = batch * Ho * Wo, N = C_out, K = C_in * kh * kw) and
  linear layer of the zoo's models, and large squares;
- ``--e2e``: whole models (zoo, weights pruned 2:4 by magnitude without fine-tuning: latency only)
  as fp16 dense eager vs int8 and 2:4+int8 on the kernels' modules.

TFLOP/s count 2*M*N*K (dense-equivalent, also for 2:4); % of peak is against the datasheet dense
peak of that precision for the detected GPU (``--peak-fp16`` / ``--peak-int8`` override it).
Each contender's output is checked against a reference before it is timed.

    python benchmarks/kernels_gemm.py [--quick] [--e2e] [--json out.json]
    python benchmarks/kernels_gemm.py --list-shapes      # no GPU needed
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: NVIDIA datasheet dense tensor-core peaks (TFLOP/s fp16 with fp32 accumulate, TOP/s int8), by name
DATASHEET_PEAKS = {
    "H100 PCIe": (756.0, 1513.0),
    "H100 NVL": (835.0, 1671.0),
    "H100": (989.4, 1978.9),  # SXM5 (e.g. "NVIDIA H100 80GB HBM3")
    "H200": (989.4, 1978.9),
    "A100": (312.0, 624.0),
}
SQUARES = [1024, 2048, 4096, 8192, 16384]
NO_CUDA = ("kernels_gemm: no CUDA device is visible to torch ({build}); this benchmark measures GPU kernels. "
           "Run it on an NVIDIA GPU: see docs/kernels.md")


def zoo_shapes(batches: list[int]) -> list[tuple[str, int, int, int]]:
    """``(label, M, N, K)`` of every conv / linear GEMM in the zoo's models, deduplicated."""
    import torch
    import torch.nn as nn

    from harness.models.zoo import resnet18, small_cnn

    models = {"small-cnn@32": (small_cnn(3, 10), 32), "resnet18@32": (resnet18(3, 10), 32),
              "resnet18-imagenet@224": (resnet18(3, 1000, stem="imagenet"), 224)}
    seen, shapes = set(), []
    for name, (model, size) in models.items():
        found: list[tuple[int, int, int]] = []

        def hook(module, inputs, output, found=found):
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                found.append((output.shape[2] * output.shape[3], module.out_channels, module.in_channels * kh * kw))
            else:
                found.append((1, module.out_features, module.in_features))

        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
        for h in handles:
            h.remove()
        for b in batches:
            for m_per_image, n, k in found:
                if (b * m_per_image, n, k) not in seen:
                    seen.add((b * m_per_image, n, k))
                    shapes.append((f"{name} bs{b}", b * m_per_image, n, k))
    return shapes


def peaks(name: str, args) -> tuple[float | None, float | None]:
    fp16, int8 = next((p for key, p in DATASHEET_PEAKS.items() if key in name), (None, None))
    return args.peak_fp16 or fp16, args.peak_int8 or int8


def bench(fn) -> float:
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))


def attempt(results: dict, key: str, fn, check=None, prepare=None) -> None:
    """Check then time ``fn`` (``fn(prepare())`` when given: the preparation is not timed);
    a contender that cannot run records why instead of a number."""
    try:
        if prepare is not None:
            state = prepare()

            def call():
                return fn(state)
        else:
            call = fn
        out = call()
        if check is not None:
            check(out)
        results[key] = bench(call)
    except Exception as exc:  # noqa: BLE001 - a failing contender is reported, the sweep goes on
        results[key] = f"unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"


def gemm_row(label: str, m: int, n: int, k: int, device: str = "cuda") -> dict:
    import torch
    import torch.nn.functional as F

    from harness.kernels import reference as ref
    from harness.kernels.int8_gemm import int8_gemm
    from harness.kernels.sparse24 import sparse24_gemm

    dev = device  # "cpu" only for the test suite's smoke run under Triton's interpreter
    a8 = torch.randint(-128, 128, (m, k), dtype=torch.int8, device=dev)
    w8 = torch.randint(-128, 128, (n, k), dtype=torch.int8, device=dev)
    a16, w16 = torch.randn(m, k, device=dev, dtype=torch.float16), torch.randn(n, k, device=dev, dtype=torch.float16)
    sa, sw = torch.tensor(0.01, device=dev), torch.rand(n, device=dev) * 0.01
    w24_16 = ref.prune_24(w16)
    w24_8 = ref.prune_24(w8.float()).to(torch.int8)
    p16, p8 = ref.compress_24(w24_16), ref.compress_24(w24_8)
    exact, exact24 = ref.int8_gemm_int32(a8, w8), ref.int8_gemm_int32(a8, w24_8)  # float64 on the GPU: exact

    def same(expected):
        def check(out):
            if not torch.equal(out.to(torch.int32), expected):
                raise AssertionError("wrong int32 result")
        return check

    def near(expected):
        def check(out):
            torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2 * expected.abs().max().item())
        return check

    t: dict = {}
    attempt(t, "cublas_fp16", lambda: a16 @ w16.T)
    attempt(t, "int_mm", lambda: torch._int_mm(a8, w8.T), same(exact))
    attempt(t, "ours_int8", lambda: int8_gemm(a8, w8), same(exact))
    attempt(t, "ours_int8_fused_fp16", lambda: int8_gemm(a8, w8, sa, sw, out_dtype=torch.float16),
            near(ref.dequant_epilogue(exact, sa, sw)))
    attempt(t, "ours_24_fp16", lambda: sparse24_gemm(a16, p16), near(a16.float() @ w24_16.float().T))
    attempt(t, "ours_24_int8", lambda: sparse24_gemm(a8, p8), same(exact24))
    # PyTorch's semi-structured tensors (the 2:4 vendor baseline); its int8 matmul returns int8
    # (saturating, no int32 accumulators), so that row is timed but not checked
    semi = torch.sparse.to_sparse_semi_structured
    attempt(t, "torch_semi_fp16", lambda s16: F.linear(a16, s16), near(a16.float() @ w24_16.float().T),
            prepare=lambda: semi(w24_16))
    attempt(t, "torch_semi_int8", lambda s8: torch.mm(s8, a8.T), prepare=lambda: semi(w24_8))
    return {"label": label, "M": m, "N": n, "K": k, "ms": t}


def summarise(row: dict, peak16: float | None, peak8: float | None) -> dict:
    ms, flops = row["ms"], 2.0 * row["M"] * row["N"] * row["K"]

    def num(key):
        return ms.get(key) if isinstance(ms.get(key), float) else None

    def ratio(slow, fast):
        return round(num(slow) / num(fast), 3) if num(slow) and num(fast) else None

    tflops = {k: round(flops / (v * 1e-3) / 1e12, 2) for k, v in ms.items() if isinstance(v, float)}
    pct = {}
    for key, value in tflops.items():
        peak = peak8 if "int" in key else peak16
        if peak:
            pct[key] = round(100 * value / peak, 1)
    row.update(tflops=tflops, pct_of_dense_peak=pct, speedup={
        "int8_vs_cublas_fp16": ratio("cublas_fp16", "ours_int8"),
        "int8_vs_int_mm": ratio("int_mm", "ours_int8"),
        "int8_fused_vs_cublas_fp16": ratio("cublas_fp16", "ours_int8_fused_fp16"),
        "24_fp16_vs_dense_fp16": ratio("cublas_fp16", "ours_24_fp16"),
        "24_int8_vs_dense_int8": ratio("ours_int8", "ours_24_int8"),
        "24_fp16_vs_torch_semi_fp16": ratio("torch_semi_fp16", "ours_24_fp16"),
        "torch_semi_fp16_vs_dense_fp16": ratio("cublas_fp16", "torch_semi_fp16"),
    })
    return row


def e2e(batches: list[int]) -> list[dict]:
    """Whole zoo models on the GPU: fp16 dense eager vs the kernels' int8 and 2:4+int8 modules."""
    import copy

    import torch

    from harness.kernels.swap import swap_modules
    from harness.models.zoo import resnet18, small_cnn

    rows = []
    for name, factory in {"small-cnn": lambda: small_cnn(3, 10), "resnet18": lambda: resnet18(3, 10)}.items():
        base = factory().eval()
        for b in batches:
            x = torch.randn(b, 3, 32, 32)
            ms = {}
            dense = copy.deepcopy(base).to("cuda", torch.float16)
            ms["fp16_dense"] = _time_model(dense, x)
            for mode in ("int8", "2:4+int8"):
                model = copy.deepcopy(base)
                swap_modules(model, mode, calibration=x, prune=mode != "int8")
                ms[mode] = _time_model(model.to("cuda", torch.float16), x)
            rows.append({"model": name, "batch": b, "ms": ms, "speedup_vs_fp16": {
                k: round(ms["fp16_dense"] / v, 3) for k, v in ms.items() if k != "fp16_dense"}})
    return rows


def _time_model(model, x) -> float:
    import torch

    x = x.to("cuda", torch.float16)
    with torch.inference_mode():
        return bench(lambda: model(x))


def environment() -> dict:
    import datetime

    import torch
    import triton

    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "capability": f"{props.major}.{props.minor}", "torch": torch.__version__,
            "cuda": torch.version.cuda, "triton": triton.__version__,
            "date": datetime.date.today().isoformat()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few zoo shapes and two squares")
    parser.add_argument("--e2e", action="store_true", help="also time whole zoo models")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="batch sizes of the zoo shapes")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument("--peak-fp16", type=float, help="dense fp16 tensor-core peak, TFLOP/s")
    parser.add_argument("--peak-int8", type=float, help="dense int8 tensor-core peak, TOP/s")
    parser.add_argument("--list-shapes", action="store_true", help="print the GEMM shapes and exit (no GPU needed)")
    args = parser.parse_args(argv)
    zoo = zoo_shapes(args.batches)
    if args.quick:  # a sample of the layers with enough work to matter (N >= 128, K >= 576)
        zoo = [s for s in zoo if s[2] >= 128 and s[3] >= 576][::3]
    shapes = zoo + [(f"square {s}", s, s, s) for s in (SQUARES[1:3] if args.quick else SQUARES)]
    if args.list_shapes:
        for label, m, n, k in shapes:
            print(f"{label:28s} M={m:<8d} N={n:<6d} K={k}")
        return 0
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build of torch" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no device"
        print(NO_CUDA.format(build=build), file=sys.stderr)
        return 4
    env = environment()
    peak16, peak8 = peaks(env["gpu"], args)
    print(f"{env['gpu']} (sm {env['capability']}), torch {env['torch']}, triton {env['triton']}; "
          f"dense peaks fp16 {peak16} TFLOP/s, int8 {peak8} TOP/s")
    rows = []
    for label, m, n, k in shapes:
        row = summarise(gemm_row(label, m, n, k), peak16, peak8)
        rows.append(row)
        sp = row["speedup"]
        print(f"{label:28s} {m:>7d}x{n:<5d}x{k:<6d} int8 {row['tflops'].get('ours_int8', '-'):>7} TOP/s "
              f"x{sp['int8_vs_cublas_fp16']} fp16, x{sp['int8_vs_int_mm']} _int_mm | 2:4 fp16 "
              f"x{sp['24_fp16_vs_dense_fp16']} dense, x{sp['24_fp16_vs_torch_semi_fp16']} semi | "
              f"2:4 int8 x{sp['24_int8_vs_dense_int8']} dense")
    doc = {"environment": env, "peaks": {"fp16_tflops": peak16, "int8_tops": peak8}, "gemm": rows}
    if args.e2e:
        doc["e2e"] = e2e([1, 32, 256])
        for r in doc["e2e"]:
            print(f"e2e {r['model']:10s} bs{r['batch']:<4d} " + "  ".join(f"{k} {v:.3f} ms" for k, v in r["ms"].items()))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
