"""The bench's table and its one-line summary (the last line of `make bench`)."""

from __future__ import annotations

import sys

OURS = (
    ("cold", "fresh GOCACHE + build cache"),
    ("warm", "new dev tag, same commit"),
    ("staging", "rc.1, same commit"),
    ("promotion", "prod tag on the rc's commit"),
)
# The new paths: (result key, contender, case label). Keys missing from a run (--cases) are left out.
PATHS = (
    ("daemon_promotion", "daemon", "promotion: prod tag -> sensor -> daemon"),
    ("ours_fresh_promotion", "fresh", "promotion: empty cache, work, GOCACHE"),
    ("ours_one_change_warm", "ours", "one service changed, warm worker"),
    ("ours_one_change_fresh", "fresh", "one service changed, fresh worker"),
)
STEP_ORDER = (
    "source",
    "routes",
    "binaries",
    "images",
    "artifacts",
    "api_gateway_routes",
    "gitops_bump",
)


def progress(what: str, seconds: float) -> None:
    print(f"bench: {what}" + (f": {seconds:.1f}s" if seconds else ""), file=sys.stderr, flush=True)


def _steps(result: dict) -> str:
    """Per-step seconds; `load` (the code location) when the process measured it (not a daemon run)."""
    steps = result.get("steps", {})
    parts = [f"load {result['load_s']:.1f}"] if "load_s" in result else []
    parts += [
        f"{name.removesuffix('_bump').removesuffix('_routes')} {steps[name]:.1f}"
        for name in STEP_ORDER
        if name in steps
    ]
    parts += [f"{k} {v:.1f}" for k, v in steps.items() if k not in STEP_ORDER and k != "(run)"]
    return " | ".join(parts)


# The summary's fields, in the order of the last line: how each is computed from the results.
FIELDS = (
    ("cold_ratio", ".3f", lambda r: wall(r, "ours_cold") / wall(r, "old_cold")),
    ("warm_ratio", ".3f", lambda r: wall(r, "ours_warm") / wall(r, "old_warm")),
    ("promotion_ratio", ".3f", lambda r: wall(r, "ours_promotion") / wall(r, "old_cold")),
    (
        "overhead",
        ".3f",
        lambda r: (wall(r, "ours_cold") - wall(r, "floor_cold")) / wall(r, "floor_cold"),
    ),
    ("sensor_10k_tags_s", ".3f", lambda r: r["sensor"]["tick_s"]),
    (
        "peak_rss_mb",
        ".0f",
        lambda r: max(res["maxrss_mb"] for key, res in r.items() if key.startswith("ours_")),
    ),
    # The daemon's run, launch (RUN_STARTING) to RUN_SUCCESS, over the CLI's whole promotion.
    (
        "daemon_promotion_ratio",
        ".3f",
        lambda r: wall(r, "daemon_promotion") / wall(r, "ours_promotion"),
    ),
    ("fresh_promotion_go_builds", "d", lambda r: r["ours_fresh_promotion"]["go_builds"]),
    (
        "fresh_one_change_ratio",
        ".3f",
        lambda r: wall(r, "ours_one_change_fresh") / wall(r, "ours_one_change_warm"),
    ),
)


def wall(r: dict, key: str) -> float:
    return r[key]["wall_s"]


def summary(r: dict) -> dict[str, float]:
    """The fields whose cases ran (all of them in a full bench)."""
    out = {}
    for name, _, compute in FIELDS:
        try:
            out[name] = compute(r)
        except (KeyError, ValueError):  # a case left out with --cases
            continue
    return out


def line(r: dict) -> str:
    s = summary(r)
    return f"bench: services={r['services']} " + " ".join(
        f"{name}={s[name]:{spec}}" for name, spec, _ in FIELDS if name in s
    )


def _cpu(r: dict) -> dict[str, float]:
    def cpu_of(key: str) -> float:  # the contender's processes and the servers' work for it
        return r[key]["cpu_s"] + r[key].get("services_cpu_s", 0)

    ratios = {
        "cold": lambda: cpu_of("ours_cold") / cpu_of("old_cold"),
        "warm": lambda: cpu_of("ours_warm") / cpu_of("old_warm"),
        "overhead": lambda: (cpu_of("ours_cold") - cpu_of("floor_cold")) / cpu_of("floor_cold"),
    }
    out = {}
    for name, compute in ratios.items():
        try:
            out[name] = compute()
        except KeyError:
            continue
    return out


class Table:
    def __init__(self) -> None:
        self.rows = [
            f"{'contender':<10}{'case':<40}{'wall s':>8}{'cpu s':>8}{'+svc s':>8}  {'peak MB':>16}  "
            "load at start    phases (s)",
            "-" * 156,
        ]

    def row(self, who: str, case: str, res: dict, phases: str, mem: str = "") -> None:
        cpu = "".join(
            f"{res[k]:>8.1f}" if k in res else f"{'-':>8}" for k in ("cpu_s", "services_cpu_s")
        )
        self.rows.append(
            f"{who:<10}{case:<40}{res['wall_s']:>8.1f}{cpu}  {mem:>16}  {res.get('load', ''):<16} {phases}"
        )

    def ours(self, who: str, case: str, res: dict) -> None:
        mem = f"{res['self_maxrss_kb'] / 1024:.0f}/{res['maxrss_mb']:.0f}/{res['tree_peak_mb']:.0f}"
        builds = f" | go builds {res['go_builds']}" if "go_builds" in res else ""
        self.row(
            who, case, res, _steps(res) + f" | run {res['steps'].get('(run)', 0):.1f}" + builds, mem
        )

    def daemon(self, case: str, res: dict) -> None:
        phases = (
            f"tag -> run {res['sensor_s']:.1f} | queue {res['queue_s']:.1f} | worker start "
            f"{res['worker_start_s']:.1f} | " + _steps(res) + f" | go builds {res['go_builds']}"
        )
        self.row("daemon", case, res, phases)


def _contenders(r: dict, table: Table) -> None:
    for case in ("cold", "warm"):
        if res := r.get(f"floor_{case}"):
            table.row(
                "floor",
                f"{case}: one go build ./cmd/ms/...",
                res,
                "",
                f"{res['maxrss_mb']:.0f}/{res['tree_peak_mb']:.0f}",
            )
    if tuned := r.get("floor_tuned"):
        table.row(
            "floor",
            f"cold, GOGC=off GOMEMLIMIT={tuned['memory_limit']}",
            tuned,
            "(reference: our Go memory setting)",
            f"{tuned['maxrss_mb']:.0f}/{tuned['tree_peak_mb']:.0f}",
        )
    for case, label in (("cold", "fresh GOCACHE"), ("warm", "same commit again, warm GOCACHE")):
        if res := r.get(f"old_{case}"):
            phases = " | ".join(f"{k} {v:.1f}" for k, v in res["phases"].items())
            table.row(
                "old",
                f"{case}: {label}",
                res,
                f"{phases} (s3 via {res['uploader']})",
                f"{res['maxrss_mb']:.0f}/{res['tree_peak_mb']:.0f}",
            )
    for case, label in OURS:
        if res := r.get(f"ours_{case}"):
            table.ours("ours", f"{case}: {label}", res)
    for key, who, label in PATHS:
        if res := r.get(key):
            table.daemon(label, res) if who == "daemon" else table.ours(who, label, res)


def _notes(r: dict) -> list[str]:
    tuned, cpu = r.get("floor_tuned"), _cpu(r)
    notes = []
    if sen := r.get("sensor"):
        notes.append(
            f"sensor    one tick over {sen['tags']} tags: {sen['tick_s']:.3f}s after a {sen['baseline_s']:.3f}s "
            f"baseline tick; launched {', '.join(sen['launched'])} (tags made in {sen['create_s']:.1f}s)"
        )
    notes += [
        "peak MB: floor, old = largest process / sampled process tree; ours = release process (python) / "
        "largest process incl. go tools (wait4) / sampled process tree",
        "cpu s: user+system of the contender's process tree (wait4); +svc s: CPU the docker engine, "
        "registries and S3 servers spent meanwhile (builds, layer compression, uploads)",
        "ratios are ours/old; promotion_ratio = our prod promotion / the old flow's cold run; "
        "overhead = (our cold - floor cold) / floor cold"
        + (
            f"; against the floor with our Go memory setting: "
            f"{(r['ours_cold']['wall_s'] - tuned['wall_s']) / tuned['wall_s']:.3f}"
            if tuned and "ours_cold" in r
            else ""
        ),
        "daemon: wall = the run's RUN_STARTING (launch) -> RUN_SUCCESS in the event log, worker start and code "
        "location load included (cpu: not measured, the run is the daemon's grandchild); "
        "daemon_promotion_ratio = that / ours' promotion (the whole CLI process)",
        "fresh: new empty cache, work and Go cache, shared instance/bucket/registry/git, engine images dropped; "
        "go builds = binaries go built in the run (metadata build_<platform> or built_in_<platform>)",
    ]
    if cpu:
        notes.append(
            "the same from cpu + svc seconds (less sensitive to other load on the machine): "
            + ", ".join(f"{name} {value:.3f}" for name, value in cpu.items())
        )
    return notes


def render(r: dict) -> str:
    lay, sizes = r["layout"], r.get("binary_mb")
    head = (
        f"deploy_assets bench: {lay['ms']} ms (+{lay['lambdas']} lambdas, {lay['cli']} cli), "
        + (
            f"binaries of {sizes[0]}-{sizes[1]} MB (--binary-mb), "
            if sizes
            else "binaries without payload, "
        )
        + f"{r['cpus']} cores, load {r['load_before']} before / {r['load_after']} after, "
        f"whole bench {r['total_s']:.0f}s"
    )
    table = Table()
    _contenders(r, table)
    return "\n".join([head, "", *table.rows, "-" * 156, *_notes(r), "", line(r)])
