"""One release, in its own process, the way a run worker does it: load the code location
(`deploy_assets.definitions.defs`, configured by the environment) and execute the env's job for
the tag on the instance at DAGSTER_HOME. The bench reads the per-step timings from the run's own
events afterwards (`step_timings`), so reading them is not part of the measured wall time.

    python -m misc.bench.release_child TAG --out result.json

The bench runs this as a child so the release's wall time includes loading the code location,
and so its peak memory can be read from the kernel (wait4) apart from the bench's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

T0 = time.monotonic()


def step_timings(instance, run_id: str) -> dict[str, float]:
    """Seconds per step (STEP_START → STEP_SUCCESS/FAILURE), and the run's own wall."""
    import dagster as dg

    starts: dict[str, float] = {}
    spans: dict[str, float] = {}
    run_start = run_end = None
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            spans[event.step_key] = record.timestamp - starts.get(event.step_key, record.timestamp)
        elif kind == dg.DagsterEventType.RUN_START:
            run_start = record.timestamp
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            run_end = record.timestamp
    if run_start is not None and run_end is not None:
        spans["(run)"] = run_end - run_start
    return spans


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def code_location():
    """The code location's Definitions as the code server loads them (`defs` may be lazy)."""
    import dagster as dg

    from deploy_assets import definitions

    return definitions.defs if isinstance(definitions.defs, dg.Definitions) else definitions.defs()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("tag")
    parser.add_argument("--run-key", default="")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from deploy_assets.cli.runner import get_instance, run_release

    defs = code_location()  # configured by the environment, as a run worker loads it
    loaded = time.monotonic()
    instance = get_instance()
    outcome = run_release(
        defs,
        instance,
        args.tag,
        extra_tags={"dagster/run_key": args.run_key} if args.run_key else None,
    )
    done = time.monotonic()
    result = {
        "tag": args.tag,
        "success": outcome.success,
        "error": outcome.error,
        "run_id": outcome.run_id,
        "load_s": loaded - T0,
        "release_s": done - loaded,  # steps: read by the bench after this process
        # ru_maxrss is in KiB on Linux: this process alone, and its largest tool (go, git, ...).
        "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "tools_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        # CPU seconds of this process (Dagster, our code, the SDK clients) and of its tools (go, git).
        "self_cpu_s": _cpu(resource.RUSAGE_SELF),
        "tools_cpu_s": _cpu(resource.RUSAGE_CHILDREN),
    }
    args.out.write_text(json.dumps(result, indent=2))
    return 0 if outcome.success else 1


if __name__ == "__main__":
    sys.exit(main())
