"""One table of every benchmark's headline figures: `bench/run --all` sets BENCH_SUMMARY
to a file, each benchmark calls record() for its figures, and this script (run with that
file) prints them as Markdown and writes bench/results.md.

A figure is Slipway's value beside its by-hand baseline from the same run (when it has
one), their ratio, the target from the issue that asked for it, and whether it is met.
Run alone, a benchmark records nothing and prints only its own table.
"""

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def record(
    figure: str,
    value: float,
    unit: str,
    target: str,
    met: bool,
    baseline: float | None = None,
    baseline_name: str = "",
) -> None:
    """Add one figure to this run's summary (nothing when not run by `bench/run --all`)."""
    path = os.environ.get("BENCH_SUMMARY")
    if not path:
        return
    row = {
        "figure": figure,
        "value": value,
        "unit": unit,
        "target": target,
        "met": bool(met),
        "baseline": baseline,
        "baseline_name": baseline_name,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def machine() -> str:
    cpu = _cpu_model()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    docker = _output(["docker", "version", "--format", "{{.Server.Version}}"])
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, Linux {platform.release()}, "
        f"Docker {docker or '?'}"
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".strip()


def _ratio(row: dict) -> str:
    value, baseline = row["value"], row["baseline"]
    if baseline in (None, 0) or value is None:
        return "–"
    return f"{value / baseline:.2f}×"


def table(rows: list[dict]) -> str:
    lines = [
        "| Figure | Slipway | Baseline (same run) | Ratio | Target | Met |",
        "|---|---:|---|---:|---|---|",
    ]
    for row in rows:
        baseline = (
            f"{_number(row['baseline'], row['unit'])} ({row['baseline_name']})"
            if row["baseline"] is not None
            else "–"
        )
        lines.append(
            f"| {row['figure']} | {_number(row['value'], row['unit'])} | {baseline} "
            f"| {_ratio(row)} | {row['target']} | {'yes' if row['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def main(path: str) -> int:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = _output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    text = f"# bench/run --all, {when}, commit {commit}\n\nMachine: {machine()}\n\n{table(rows)}\n"
    (ROOT / "bench" / "results.md").write_text(text)
    print(text)
    return 0  # a target missed is a "no" in the table, not a failed run


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
