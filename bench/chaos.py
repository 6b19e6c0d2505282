"""Fault-injection convergence suite: one seeded scenario on a fresh local stack, checked record by record.

Thousands of random changes (ERP stock, merchants' edits in two Shopify stores, orders in store A, contacts
edited in HubSpot and customers in the OMS) are made while faults are injected (duplicated, delayed and
reordered deliveries; sandbox 5xx / 429 / timeouts / dropped connections; expired OAuth tokens; workers killed
mid-batch; the poller killed before its checkpoint; PostgreSQL connections terminated; the moto server
frozen). Then the faults stop, the queues
settle, every DLQ is redriven once, the queues settle again, and every record on every system is checked
against what the configured policies promise. See docs/RELIABILITY.md.

    python bench/chaos.py --seed 7 --changes 2000          # make chaos SEED=7 CHANGES=2000
    python bench/chaos.py --seed 7 --changes 2000 --no-faults   # the same changes without faults

Exit status: 0 when nothing diverged, nothing was lost and the DLQs are empty after the redrive; 1 otherwise.
To replay a failing seed, run it again with the same --seed and --changes and read `divergent_records`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "functions"))

from syncline.local.chaos import ChaosSettings, run_chaos  # noqa: E402

CONFIG = HERE / "chaos.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="Figures: bench/results/chaos.json (seed, changes, deliveries, faults by kind, records_checked, "
        "divergent, lost, left_in_dlq, writes_per_change, seconds_to_converge, each divergent record, and by_pair: "
        "the HubSpot <-> OMS customers pair's own figures).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds the changes and every fault draw (default: 1)")
    parser.add_argument(
        "--changes", type=int, default=2000, help="random changes to make while faults are injected (default: 2000)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=HERE / "results" / "chaos.json",
        help="where to write the figures (default: bench/results/chaos.json)",
    )
    parser.add_argument("--no-faults", action="store_true", help="make the same changes without injecting faults")
    parser.add_argument("--config", type=Path, default=CONFIG, help="pairs appended to functions/syncline.toml")
    parser.add_argument("--work-dir", type=Path, help="keep the stack's logs here (default: a temporary directory)")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack's moto and PostgreSQL on a kill
    settings = ChaosSettings(seed=args.seed, changes=args.changes, faults=not args.no_faults)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="syncline-chaos-"))

    def progress(made: int, total: int) -> None:
        print(f"\r{made}/{total} changes made", end="" if made < total else "; converging...\n", file=sys.stderr)

    report = run_chaos(settings, extra_config=args.config.read_text(), work_dir=work_dir, progress=progress)
    figures = report.to_json()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")

    ok = report.divergent == 0 and report.lost == 0 and report.left_in_dlq == 0
    print(
        f"{'converged' if ok else 'DIVERGED'}: seed {report.seed}, {report.changes} changes, "
        f"{report.deliveries} deliveries, {sum(report.faults.values())} faults injected, "
        f"{report.records_checked} records checked, {report.divergent} divergent, {report.lost} lost, "
        f"{report.dead_lettered} dead-lettered -> {report.left_in_dlq} left after the redrive, "
        f"{report.writes_per_change} writes per change, converged in {report.seconds_to_converge} s "
        f"(run {report.seconds_total} s)"
    )
    for record in report.divergent_records[:20]:
        print(f"  {record.system} {record.key}: expected {record.expected}, actual {record.actual}")
    print(f"figures: {args.output}; logs: {work_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
