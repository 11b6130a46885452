"""The bench's table and its one-line summary (the last line of `make bench`)."""

from __future__ import annotations

import sys

OURS = (("cold", "fresh GOCACHE + build cache"), ("warm", "new dev tag, same commit"),
        ("staging", "rc.1, same commit"), ("promotion", "prod tag on the rc's commit"))
STEP_ORDER = ("source", "routes", "binaries", "images", "artifacts", "api_gateway_routes", "gitops_bump")


def progress(what: str, seconds: float) -> None:
    print(f"bench: {what}" + (f": {seconds:.1f}s" if seconds else ""), file=sys.stderr, flush=True)


def _steps(result: dict) -> str:
    steps = result.get("steps", {})
    parts = [f"load {result.get('load_s', 0):.1f}"]
    parts += [f"{name.removesuffix('_bump').removesuffix('_routes')} {steps[name]:.1f}"
              for name in STEP_ORDER if name in steps]
    parts += [f"{k} {v:.1f}" for k, v in steps.items() if k not in STEP_ORDER and k != "(run)"]
    return " | ".join(parts)


def summary(r: dict) -> dict[str, float]:
    old_cold, old_warm = r["old_cold"]["wall_s"], r["old_warm"]["wall_s"]
    floor = r["floor_cold"]["wall_s"]
    ours = [r[f"ours_{case}"] for case, _ in OURS]
    return {
        "cold_ratio": r["ours_cold"]["wall_s"] / old_cold,
        "warm_ratio": r["ours_warm"]["wall_s"] / old_warm,
        "promotion_ratio": r["ours_promotion"]["wall_s"] / old_cold,
        "overhead": (r["ours_cold"]["wall_s"] - floor) / floor,
        "sensor_10k_tags_s": r["sensor"]["tick_s"],
        "peak_rss_mb": max(o["maxrss_mb"] for o in ours),
    }


def line(r: dict) -> str:
    s = summary(r)
    return (f"bench: services={r['services']} cold_ratio={s['cold_ratio']:.3f} warm_ratio={s['warm_ratio']:.3f} "
            f"promotion_ratio={s['promotion_ratio']:.3f} overhead={s['overhead']:.3f} "
            f"sensor_10k_tags_s={s['sensor_10k_tags_s']:.3f} peak_rss_mb={s['peak_rss_mb']:.0f}")


def render(r: dict) -> str:
    lay = r["layout"]
    def cpu_of(key: str) -> float:  # the contender's processes and the servers' work for it
        return r[key]["cpu_s"] + r[key].get("services_cpu_s", 0)

    cpu = {"cold": cpu_of("ours_cold") / cpu_of("old_cold"), "warm": cpu_of("ours_warm") / cpu_of("old_warm"),
           "overhead": (cpu_of("ours_cold") - cpu_of("floor_cold")) / cpu_of("floor_cold")}
    sizes = r.get("binary_mb")
    rows = [f"deploy_assets bench: {lay['ms']} ms (+{lay['lambdas']} lambdas, {lay['cli']} cli), "
            + (f"binaries of {sizes[0]}-{sizes[1]} MB (--binary-mb), " if sizes else "binaries without payload, ")
            + f"{r['cpus']} cores, load {r['load_before']} before / {r['load_after']} after, "
            f"whole bench {r['total_s']:.0f}s",
            "",
            f"{'contender':<10}{'case':<34}{'wall s':>8}{'cpu s':>8}{'+svc s':>8}  {'peak MB':>16}  "
            "load at start    phases (s)",
            "-" * 150]

    def row(who: str, case: str, res: dict, phases: str, mem: str = "") -> None:
        rows.append(f"{who:<10}{case:<34}{res['wall_s']:>8.1f}{res.get('cpu_s', 0):>8.1f}"
                    f"{res.get('services_cpu_s', 0):>8.1f}  {mem:>16}  {res.get('load', ''):<16} {phases}")

    for case in ("cold", "warm"):
        res = r[f"floor_{case}"]
        row("floor", f"{case}: one go build ./cmd/ms/...", res, "", f"{res['maxrss_mb']:.0f}/{res['tree_peak_mb']:.0f}")
    tuned = r.get("floor_tuned")
    if tuned:
        row("floor", f"cold, GOGC=off GOMEMLIMIT={tuned['memory_limit']}", tuned, "(reference: our Go memory setting)",
            f"{tuned['maxrss_mb']:.0f}/{tuned['tree_peak_mb']:.0f}")
    for case, label in (("cold", "fresh GOCACHE"), ("warm", "same commit again, warm GOCACHE")):
        res = r[f"old_{case}"]
        phases = " | ".join(f"{k} {v:.1f}" for k, v in res["phases"].items())
        row("old", f"{case}: {label}", res, f"{phases} (s3 via {res['uploader']})",
            f"{res['maxrss_mb']:.0f}/{res['tree_peak_mb']:.0f}")
    for case, label in OURS:
        res = r[f"ours_{case}"]
        mem = f"{res['self_maxrss_kb'] / 1024:.0f}/{res['maxrss_mb']:.0f}/{res['tree_peak_mb']:.0f}"
        row("ours", f"{case}: {label}", res, _steps(res) + f" | run {res['steps'].get('(run)', 0):.1f}", mem)
    sen = r["sensor"]
    rows += ["-" * 150,
             f"sensor    one tick over {sen['tags']} tags: {sen['tick_s']:.3f}s after a {sen['baseline_s']:.3f}s "
             f"baseline tick; launched {', '.join(sen['launched'])} (tags made in {sen['create_s']:.1f}s)",
             "peak MB: floor, old = largest process / sampled process tree; ours = release process (python) / "
             "largest process incl. go tools (wait4) / sampled process tree",
             "cpu s: user+system of the contender's process tree (wait4); +svc s: CPU the docker engine, "
             "registries and S3 servers spent meanwhile (builds, layer compression, uploads)",
             "ratios are ours/old; promotion_ratio = our prod promotion / the old flow's cold run; "
             "overhead = (our cold - floor cold) / floor cold" + (
                 f"; against the floor with our Go memory setting: "
                 f"{(r['ours_cold']['wall_s'] - tuned['wall_s']) / tuned['wall_s']:.3f}" if tuned else ""),
             f"the same from cpu + svc seconds (less sensitive to other load on the machine): cold {cpu['cold']:.3f}, "
             f"warm {cpu['warm']:.3f}, overhead {cpu['overhead']:.3f}",
             "", line(r)]
    return "\n".join(rows)
