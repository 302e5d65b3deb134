"""The files a profile leaves: ``report.json``, ``report.csv`` and ``throughput-latency.png``."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

from mme_operator.extras import install_command
from mme_operator.profile.sweep import Profile

CSV_COLUMNS = (
    "instances",
    "queueDelayUs",
    "concurrency",
    "throughput_rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "requests",
    "errors",
    "seconds",
    "gpuMemoryMiB",
)


def write_reports(profile: Profile, out: Path) -> tuple[list[Path], str | None]:
    """Write the reports into ``out``; returns the files written and a note when the plot is skipped."""
    out.mkdir(parents=True, exist_ok=True)
    report = profile.report()
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    csv_path = out / "report.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(report["results"])
    written = [json_path, csv_path]
    if importlib.util.find_spec("matplotlib") is None:
        return written, (
            "throughput-latency.png skipped: matplotlib is not installed "
            f"({install_command('plot')})"
        )
    written.append(_plot(profile, out / "throughput-latency.png"))
    return written, None


def _plot(profile: Profile, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    by_variant: dict[str, list[tuple[float, float, int]]] = {}
    for point in profile.points:
        m = point.measurement
        by_variant.setdefault(point.variant.label, []).append(
            (m.p99_ms, m.throughput_rps, m.concurrency)
        )
    for label, values in by_variant.items():
        values.sort(key=lambda v: v[2])
        axes.plot([v[0] for v in values], [v[1] for v in values], marker="o", label=label)
        for p99, rps, concurrency in values:
            axes.annotate(str(concurrency), (p99, rps), fontsize=7, alpha=0.6)
    if profile.latency_budget_ms is not None:
        axes.axvline(profile.latency_budget_ms, color="grey", linestyle="--", label="p99 budget")
    best = profile.recommendation()
    if best is not None:
        axes.scatter(
            [best.measurement.p99_ms],
            [best.measurement.throughput_rps],
            s=200,
            facecolors="none",
            edgecolors="red",
            label="recommended",
        )
    axes.set_xlabel("p99 latency (ms)")
    axes.set_ylabel("throughput (requests/s)")
    axes.set_title(f"{profile.model.name} on {profile.server} (labels: concurrency)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
