"""A deterministic RunReport for the card tests: every card section filled, no training, no clock.

Three variants on onnxruntime (dense, prune-50 fp32 chosen, prune-70 int8 faster but unfair),
a failed one, two group attributes, bias records with bootstrap intervals, three selection
policies and a knee. ``hostile=True`` renames classes, groups, the dataset and the experiment
with strings that try to break Markdown tables, HTML and YAML.
"""

from __future__ import annotations

from harness.records import (
    AccuracyStats,
    ArtifactInfo,
    BiasStats,
    DatasetInfo,
    EnergyStats,
    EnvironmentInfo,
    LatencyStats,
    MemoryStats,
    OperatingPoint,
    PolicyChoice,
    RunReport,
    Selection,
    SplitInfo,
)

HOSTILE = {
    "class": "<script>alert(1)</script>",
    "pipe": "a|b",
    "newline": "line\nbreak \"quoted\" 'single' # not a comment: {x}",
    "attr": "<b>skin</b>",
    "level": "dark & light|mixed",
    "dataset": "data/../<img src=x onerror=alert(1)>.npz",
    "experiment": "exp: \"one\" --- <i>two</i>\n- three",
}

SUPPORT = [40, 8, 30, 22]
ENERGY_REASON = "no RAPL or NVML on this machine"


def _names(hostile: bool) -> dict[str, str]:
    if hostile:
        return {"classes": ["airplane", HOSTILE["class"], HOSTILE["pipe"], HOSTILE["newline"]],
                "attr": HOSTILE["attr"], "levels": ["light", HOSTILE["level"]], "dataset": HOSTILE["dataset"],
                "experiment": HOSTILE["experiment"]}
    return {"classes": ["airplane", "cat", "dog", "snow_leopard"], "attr": "background",
            "levels": ["indoor", "outdoor"], "dataset": "toy-animals", "experiment": "card-golden"}


def _accuracy(classes: list[str], recall: list[float], dense: list[float] | None, groups: dict) -> AccuracyStats:
    total = sum(SUPPORT)
    per_class = dict(zip(classes, recall, strict=True))
    worst = min(classes, key=per_class.__getitem__)
    top1 = sum(r * n for r, n in zip(recall, SUPPORT, strict=True)) / total
    attr, levels = groups["attr"], groups["levels"]
    group_acc = {attr: dict(zip(levels, groups["acc"], strict=True))}
    worst_level = min(levels, key=group_acc[attr].__getitem__)
    delta = {} if dense is None else {c: r - d for c, r, d in zip(classes, recall, dense, strict=True)}
    dense_top1 = None if dense is None else sum(d * n for d, n in zip(dense, SUPPORT, strict=True)) / total
    return AccuracyStats(
        n_samples=total, top1=top1, per_class_recall=per_class, per_class_support=dict(zip(classes, SUPPORT, strict=True)),
        worst_class_recall=per_class[worst], worst_class=worst, per_class_delta=delta,
        top1_delta=None if dense_top1 is None else top1 - dense_top1,
        worst_class_drop=None if dense is None else min(dense) - per_class[worst],
        per_group_accuracy=group_acc, per_group_support={attr: dict(zip(levels, [70, 30], strict=True))},
        worst_group_accuracy=group_acc[attr][worst_level], worst_group=f"{attr}={worst_level}",
        small_support_groups=[f"{attr}={levels[1]}"], min_group_support=50,
    )


def _bias(classes: list[str], cie: float, cev: float, hurt: int, group_keys: tuple[str, ...] = ()) -> BiasStats:
    return BiasStats(
        per_group_delta_ci={k: [-0.06 - 0.04 * i, 0.02 - 0.04 * i] for i, k in enumerate(group_keys)},
        per_group_delta_significant={k: i == 1 for i, k in enumerate(group_keys)},
        bias_amp_a_to_t=0.041, bias_amp_a_to_t_dense=0.012, bias_amp_a_to_t_delta=0.029,
        bias_amp_delta_by_attribute={k: 0.029 for k in group_keys[:1]},
        threshold_calibration_unavailable_reason="the target has 4 classes, not 2",
        population_size=3, cev=cev, sde=cev / 2, cev_dropped_classes=[], cev_ci=[cev * 0.5, cev * 1.5],
        cie_fraction=cie, n_cie=round(cie * 100), cie_plain_disagreement=False, cie_ci=[cie * 0.8, cie * 1.2],
        cie_error_share=0.45, cie_class_rel_rep={c: 1.0 for c in classes}, ece=0.031, ece_sweep=0.027,
        uncertain_share=0.18, n_classes_hurt=hurt, susceptibility_auroc=0.71,
        per_class_delta_ci={c: [-0.08 + 0.02 * i, 0.01 + 0.02 * i] for i, c in enumerate(classes)},
        per_class_delta_significant={c: i == 1 for i, c in enumerate(classes)}, n_boot=1000,
    )


def _latency(p50: float, n: int = 400) -> LatencyStats:
    return LatencyStats(
        batch_size=1, n_samples=n, n_warmup=50, p50_ms=p50, p90_ms=p50 * 1.1, p99_ms=p50 * 1.4, mean_ms=p50 * 1.02,
        std_ms=p50 * 0.05, min_ms=p50 * 0.9, max_ms=p50 * 1.9, duration_s=2.5, throughput_sps=1000 / p50,
        threads=4, profile="standard", isolation="process",
    )


def _point(pid: str, vid: str, name: str, amount: float, precision: str, **kw) -> OperatingPoint:
    art = ArtifactInfo(path=f"cache/{vid}/model.onnx", format="onnx", file_mb=2.0 * (1 - amount / 2), n_weights=250_000,
                       weight_sparsity=amount, layer_sparsity={}, n_quantized_nodes=36 if precision == "int8" else 0,
                       precision=precision, sha256=(vid * 64)[:64])
    return OperatingPoint(point_id=pid, variant_id=vid, variant_name=name, runtime="onnxruntime", batch_size=1,
                          prune_method="none" if amount == 0 else "magnitude", prune_amount=amount, precision=precision,
                          artifact=art, **kw)


def card_report(*, hostile: bool = False) -> RunReport:
    n = _names(hostile)
    classes = n["classes"]
    dense_recall = [0.95, 0.80, 0.90, 0.86]

    def groups(acc):
        return {"attr": n["attr"], "levels": n["levels"], "acc": acc}

    mem = MemoryStats(artifact_mb=2.0, peak_rss_mb=212.5)
    no_energy = EnergyStats(None, None, None, unavailable_reason=ENERGY_REASON)
    points = [
        _point("dense@onnxruntime/b1", "vdense", "dense", 0.0, "fp32", status="ok",
               accuracy=_accuracy(classes, dense_recall, None, groups([0.91, 0.86])),
               latency=_latency(2.0), memory=mem, energy=no_energy, bias=_bias(classes, 0.02, 0.4, 0)),
        _point("prune50@onnxruntime/b1", "vp50", "prune-50", 0.5, "fp32", status="ok",
               accuracy=_accuracy(classes, [0.95, 0.75, 0.9, 0.86], dense_recall, groups([0.90, 0.84])),
               latency=_latency(1.2), memory=mem,
               energy=EnergyStats(3.25, "cpu-package", "rapl-counter"),
               bias=_bias(classes, 0.06, 1.9, 1, tuple(f"{n['attr']}={lv}" for lv in n["levels"])),
               on_pareto_front=True),
        _point("prune70int8@onnxruntime/b1", "vp70", "prune-70-int8", 0.7, "int8", status="ok",
               accuracy=_accuracy(classes, [0.975, 0.5, 0.933, 0.86], dense_recall, groups([0.91, 0.72])),
               latency=_latency(0.6), memory=mem, energy=no_energy, bias=_bias(classes, 0.12, 6.3, 2),
               on_pareto_front=True),
        _point("prune90@onnxruntime/b1", "vp90", "prune-90", 0.9, "fp32", status="failed",
               error="RuntimeError: export failed for Conv_3\nTraceback (most recent call last):\n  File x.py"),
    ]
    policies = [
        PolicyChoice("constraint-first", "prune50@onnxruntime/b1",
                     "fastest point within the top-1 and worst-class recall budgets",
                     binding_constraints=["max_worst_class_drop"]),
        PolicyChoice("weighted-utility", "prune50@onnxruntime/b1", "highest utility over normalised axes",
                     utility=0.734),
        PolicyChoice("accuracy-only", "prune70int8@onnxruntime/b1", "fastest point within the top-1 budget alone"),
    ]
    selection = Selection(
        point_id="prune50@onnxruntime/b1",
        reason="fastest point with top-1 >= 86.0% and worst-class recall drop <= 10.0 pp: prune-50 on onnxruntime",
        accuracy_only_point_id="prune70int8@onnxruntime/b1",
        accuracy_only_reason="fastest point with top-1 >= 86.0%, worst class ignored: prune-70-int8",
        fairness_changed_choice=True, batch_size=1,
        constraints={"max_top1_drop": 0.02, "max_worst_class_drop": 0.1},
        policies=policies, knee_point_id="prune50@onnxruntime/b1",
        knee_reason="largest distance from the chord between the front's end points",
    )
    dataset = DatasetInfo(
        name=n["dataset"], class_names=classes, input_shape=[3, 32, 32],
        splits=[SplitInfo("train", 600, dict(zip(classes, [200, 40, 200, 160], strict=True))),
                SplitInfo("calibration", 60, dict(zip(classes, [20, 4, 20, 16], strict=True))),
                SplitInfo("evaluation", 100, dict(zip(classes, SUPPORT, strict=True)))],
        under_represented=[classes[1]], preprocessing={"normalize": "mean 0.5, std 0.25"},
        description="four animal and vehicle classes, one deliberately rare",
        group_levels={n["attr"]: [*n["levels"], "night"]},
    )
    environment = EnvironmentInfo(
        cpu_model="Test CPU 3000", physical_cores=8, logical_cores=16, cpu_flags=["avx2"], os="Linux-6.1",
        python="3.11.7", library_versions={"onnxruntime": "1.18.0", "torch": "2.4.0"}, git_commit="abc1234",
        git_commit_unavailable_reason=None, hostname="bench-1",
    )
    return RunReport(
        run_id="20250101-000000-card", experiment_name=n["experiment"], started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:10:00Z", status="partial", dataset=dataset, model_name="resnet8",
        baseline_variant_id="vdense", points=points, objectives=["p50_ms:min", "top1:max", "worst_class_recall:max"],
        selection=selection, environment=environment, run_dir="runs/20250101-000000-card", card_path="card.md",
        plot_path="front.png", store="sqlite", n_failed=1, cie_gallery_path="runs/20250101-000000-card/cie_gallery.png",
        population=3, target="jetson-orin-nano", license=None if hostile else "apache-2.0",
        notes=["population = 3: intervals are wide; read small CEV differences as noise"],
    )


#: stand-in figure files for the golden HTML (the golden pins the card, not matplotlib's output)
FAKE_IMAGES = {
    "front.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" '
                 b'fill="#2a9d8f"/></svg>',
    "recall_delta.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" '
                        b'height="20" fill="#e76f51"/></svg>',
}
FAKE_LATENCY_SAMPLES = {"prune50@onnxruntime/b1": [1.1, 1.2, 1.3], "dense@onnxruntime/b1": [2.0, 2.1]}
