"""Case (f): releases on a fresh worker, as a new run container or pod starts them.

A fresh worker shares only what production shares: the Dagster instance (DAGSTER_HOME), the
bucket, the registry and git. Its build cache, work folder and local folder are new and empty,
and so is its Go compiler cache (DEPLOY_ASSETS_GOCACHE is not passed on: the default lives in
the empty cache folder). The engine's images and BuildKit cache are dropped before each fresh
case, since a new worker's engine would not have them either.

Measured on it: the promotion of a prod tag whose rc the warm worker released (how many binaries
`go build` produced: a worker that finds earlier builds through the shared state builds none),
and a dev release of a commit where one service changed, against the same kind of release on
the warm worker (`one_change_commit` makes each such commit).
"""

from __future__ import annotations

from pathlib import Path

from deploy_assets.resources.git import run_git

PROMOTION_VERSION = "v1.0.2"  # a prod tag on the bench's commit; its rc.1 by the warm worker
CHANGE_VERSION = "v1.1.0"  # -alpha.1: one change on the warm worker, -alpha.2: on a fresh one
# Variables that would hand a fresh worker the warm worker's disk.
WORKER_LOCAL = ("DEPLOY_ASSETS_GOCACHE", "GOCACHE", "GOCACHEPROG")
CHANGE_GO = """package main

// benchChange stands for a code change in this service only (made by misc/bench/fresh.py);
// the compiler builds the package again, the other services keep their content keys.
var benchChange = {n}
"""


def worker_env(base: dict[str, str], folder: Path) -> dict[str, str]:
    """base with a new, empty cache, work and local folder under folder, no Go cache of its own."""
    if folder.exists() and any(folder.iterdir()):
        raise RuntimeError(
            f"fresh worker folder {folder} is not empty: a fresh worker starts with nothing"
        )
    for name in ("cache", "work", "local"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in base.items() if key not in WORKER_LOCAL}
    return {
        **env,
        "DEPLOY_ASSETS_CACHE_DIR": str(folder / "cache"),
        "DEPLOY_ASSETS_WORK_DIR": str(folder / "work"),
        "DEPLOY_ASSETS_LOCAL_DIR": str(folder / "local"),
    }


def one_change_commit(clone: Path, service_dir: str, n: int) -> str:
    """Commit a change to one service (a new value in a file of its main package) and push the
    default branch; returns the new commit."""
    path = clone / service_dir / "bench_change.go"
    path.write_text(CHANGE_GO.format(n=n))
    run_git(["add", "--", str(path.relative_to(clone))], cwd=clone)
    run_git(["commit", "--quiet", "-m", f"bench: change {service_dir} ({n})"], cwd=clone)
    run_git(["push", "--quiet", "origin", "HEAD:main"], cwd=clone)
    return run_git(["rev-parse", "HEAD"], cwd=clone).decode().strip()


def cases(bench) -> None:
    """(f): a promotion and a one-service change on fresh workers; the change on the warm one too.
    Each change is a new commit, so neither release finds the other's build of it."""
    bench.ours("fresh_rc", f"{PROMOTION_VERSION}-rc.1")
    bench.drop_images("ours")
    bench.ours("fresh_promotion", PROMOTION_VERSION, env=_worker(bench, "promotion"))
    service = f"cmd/ms/{bench.layout.ms[0]}"
    warm_at = one_change_commit(bench.clone, service, 1)
    bench.ours("one_change_warm", f"{CHANGE_VERSION}-alpha.1", commit=warm_at)
    fresh_at = one_change_commit(bench.clone, service, 2)
    bench.drop_images("ours")
    bench.ours(
        "one_change_fresh",
        f"{CHANGE_VERSION}-alpha.2",
        env=_worker(bench, "one-change"),
        commit=fresh_at,
    )


def _worker(bench, name: str) -> dict[str, str]:
    return worker_env(bench.ours_env(bench.remote), bench.root / "fresh" / name)
