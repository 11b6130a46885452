"""`make bench`: the old release flow, our release and the build floor, side by side.

One run, one local stack per contender (registry and S3 API on free ports, bare git repos in a
temp root), one synthetic monorepo commit that all contenders release:

  floor  one `go build -o DIR/ ./cmd/ms/...` (the mains a dev release builds), cold then warm;
         then cold again with our Go memory setting (GOGC=off, GOMEMLIMIT), for reference
  old    the old workflow as a script (misc/bench/old_flow.py), cold, then the same commit again
  ours   the sensor's job for the tag on a fresh instance (misc/bench/release_child.py):
         cold (fresh GOCACHE and build cache), warm (a new dev tag on the same commit),
         then vX.Y.Z-rc.1 and the promotion to vX.Y.Z on that commit
  daemon the promotion of another prod tag on that commit, launched by the tag sensor through a
         real `dagster-daemon` (misc/bench/daemon.py), against ours' promotion
  fresh  on a fresh worker (misc/bench/fresh.py: empty cache, work and Go cache; the instance,
         bucket, registry and git shared): a promotion (its go builds counted), and a dev
         release of a commit where one service changed, against the same on the warm worker
  sensor one tick of the real tag sensor against a remote with 10,000 tags

"Cold" is a fresh GOCACHE for each contender, and the old flow's images are removed from the
engine before ours run, so neither inherits the other's layers. The table goes to stdout and
bench-results/; the last line is the summary the issue asks for. Every server the bench starts
(registries, S3 API servers, the daemon and its children) is stopped by pid when it ends, also
when a case fails.

    python -m misc.bench.run --services 20 [--binary-mb 25-45] [--cases ours,daemon] [--keep] [--root DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from deploy_assets.config import REPO_ROOT, load_pipeline_config
from deploy_assets.local import stack as local_stack
from deploy_assets.resources.git import run_git
from misc.bench import daemon, fresh, generator, report, sensor
from misc.bench.events import run_facts
from misc.bench.procs import Started, checked, load_average, run_child, stop

PYTHON = sys.executable
GO = str(Path(PYTHON).parent / "go")
BUCKET, REGION = "app-artifacts", "eu-west-1"
VERSION = "v1.0.0"
DOCKERD_STATE = Path(tempfile.gettempdir()) / f"deploy-assets-bench-dockerd-{os.getuid()}"
CASES = ("old", "floor", "ours", "daemon", "fresh", "sensor")  # the order they run in
NEEDS = {"daemon": {"ours"}, "fresh": {"ours"}}  # compared with ours' promotion / warm worker


class Bench:
    def __init__(
        self,
        root: Path,
        services: int,
        binary_mb: tuple[int, int] | None = None,
        records: dict[str, int] | None = None,
    ):
        self.root, self.services, self.binary_mb = root, services, binary_mb
        self.records = records or {}  # generator record counts: tests make a light repo
        self.remote, self.clone = root / "git" / "monorepo.git", root / "monorepo"
        self.stacks: dict[str, dict] = {}
        self.started: list[Started] = []  # every server started, stopped by pid in teardown
        self.results: dict = {
            "services": services,
            "binary_mb": list(binary_mb) if binary_mb else None,
        }
        self.base_env = {
            **os.environ,
            "PATH": f"{Path(PYTHON).parent}:{os.environ.get('PATH', '')}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOFLAGS": "-mod=mod",
            "DEPLOY_ASSETS_ENV_FILE": str(root / "no-env-file"),
        }

    # --- set-up -----------------------------------------------------------------------------
    def setup(self) -> None:
        self.start_stacks()
        self.make_repo()

    def start_stacks(self) -> None:
        local_stack.ensure_docker_engine(DOCKERD_STATE)
        for who in ("old", "ours"):
            state, reg_port, s3_port = (
                self.root / who / "stack",
                local_stack.free_port(),
                local_stack.free_port(),
            )
            self.started.append(
                Started.of(
                    f"{who} registry",
                    local_stack.start_registry(reg_port, self.root / who / "registry", state),
                )
            )
            self.started.append(
                Started.of(f"{who} s3", local_stack.start_s3(s3_port, state, BUCKET, REGION))
            )
            local_stack.init_bare_repos(self.root / who / "git", local_stack.REPO_NAMES)
            self.stacks[who] = {
                "registry": f"127.0.0.1:{reg_port}",
                "s3": f"http://127.0.0.1:{s3_port}",
                "state": state,
                "git": self.root / who / "git",
            }

    def make_repo(self) -> None:
        from deploy_assets.cli.demo import create_monorepo

        self.layout = generator.generate(
            self.root / "template", self.services, binary_mb=self.binary_mb, **self.records
        )
        create_monorepo(self.remote, self.clone, self.root / "template")
        layout = self.layout
        self.results["layout"] = {
            "ms": len(layout.ms),
            "lambdas": len(layout.lambdas),
            "cli": len(layout.cli),
        }
        self.commit = self._git("rev-parse", "HEAD")
        # Untimed: read GOROOT once so the first contender does not pay for a cold page cache.
        checked(
            [GO, "list", "-e", "-deps", "./..."],
            self._go_env(self.root / "gocache" / "warmup"),
            self.root / "template",
            self.root / "logs" / "warmup.log",
        )

    def _git(self, *args: str) -> str:
        return run_git(list(args), cwd=self.clone).decode().strip()

    def tag(self, name: str, commit: str | None = None) -> None:
        """Tag the commit and push the tag (once: the old flow and ours release the same tags)."""
        if self._git("tag", "--list", name):
            return
        self._git("tag", name, commit or self.commit)
        self._git("push", "--quiet", "origin", f"refs/tags/{name}")

    def _go_env(self, gocache: Path) -> dict[str, str]:
        return {
            **self.base_env,
            "GOCACHE": str(gocache),
            "CGO_ENABLED": "0",
            "GOOS": "linux",
            "GOARCH": "arm64",
        }

    # --- contenders -------------------------------------------------------------------------
    def floor(self) -> None:
        """One `go build` of the dev release's mains in an export of the commit, cold then warm."""
        src, out = self.root / "floor" / "src", self.root / "floor" / "out"
        src.mkdir(parents=True)
        archive = run_git(["archive", "--format=tar", self.commit], cwd=self.remote)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(src, filter="data")
        config = load_pipeline_config()
        argv = [GO, "build", *config.build_flags, "-o", f"{out}{os.sep}", "./cmd/ms/..."]
        env = self._go_env(self.root / "gocache" / "floor")
        # The same build once more, cold, with the Go memory setting our builds run with: the
        # floor stays the plain `go build`, and this row shows what of our lead is that setting.
        tuned = {
            **self._go_env(self.root / "gocache" / "floor-tuned"),
            "GOGC": "off",
            "GOMEMLIMIT": config.go_memory_limit,
        }
        for case, case_env in (("cold", env), ("warm", env), ("tuned", tuned)):
            shutil.rmtree(out, ignore_errors=True)
            load = load_average()
            child = checked(argv, case_env, src, self.root / "logs" / f"floor-{case}.log")
            self.results[f"floor_{case}"] = {
                "wall_s": child.wall_s,
                "cpu_s": child.cpu_s,
                "load": load,
                "maxrss_mb": child.maxrss_mb,
                "tree_peak_mb": child.tree_peak_mb,
                "services_cpu_s": child.services_cpu_s,
                "memory_limit": config.go_memory_limit,
            }
            report.progress(f"floor {case}", child.wall_s)

    def old(self, case: str, tag: str) -> None:
        stack = self.stacks["old"]
        out = self.root / "old" / f"{case}.json"
        self.tag(tag)
        argv = [
            PYTHON,
            "-m",
            "misc.bench.old_flow",
            "--remote",
            self.remote.as_uri(),
            "--tag",
            tag,
            "--work",
            str(self.root / "old" / f"run-{case}"),
            "--registry",
            stack["registry"],
            "--s3-endpoint",
            stack["s3"],
            "--bucket",
            BUCKET,
            "--gitops-root",
            str(stack["git"]),
            "--gocache",
            str(self.root / "gocache" / "old"),
            "--go",
            GO,
            "--out",
            str(out),
        ]
        load = load_average()
        child = run_child(argv, self.base_env, self.root / "logs" / f"old-{case}.log", REPO_ROOT)
        if child.returncode != 0:
            raise RuntimeError(
                f"old flow ({case}) failed; log {child.log}:\n{child.log.read_text()[-3000:]}"
            )
        self.results[f"old_{case}"] = {
            **json.loads(out.read_text()),
            "wall_s": child.wall_s,
            "cpu_s": child.cpu_s,
            "services_cpu_s": child.services_cpu_s,
            "maxrss_mb": child.maxrss_mb,
            "tree_peak_mb": child.tree_peak_mb,
            "load": load,
        }
        report.progress(f"old {case}", child.wall_s)

    def ours_env(self, source_repo: Path) -> dict[str, str]:
        """Our settings, all inside the bench's root: nothing of a developer's .local is touched."""
        stack, home = self.stacks["ours"], self.root / "ours" / "dagster_home"
        if not home.exists():
            home.mkdir(parents=True)
            shutil.copyfile(
                REPO_ROOT / "misc" / "configs" / "dagster.local.yaml", home / "dagster.yaml"
            )
        return {
            **self.base_env,
            "DAGSTER_HOME": str(home),
            "DEPLOY_ASSETS_LOCAL_DIR": str(self.root / "ours"),
            "DEPLOY_ASSETS_SOURCE_REPO": str(source_repo),
            "DEPLOY_ASSETS_REGISTRY": stack["registry"],
            "DEPLOY_ASSETS_S3_ENDPOINT": stack["s3"],
            "APP_ARCHIVER_BUCKET": BUCKET,
            "APP_ARCHIVER_AWS_REGION": REGION,
            "APP_ARCHIVER_PATH": "binaries",
            "DEPLOY_ASSETS_GITOPS_ROOT": str(stack["git"]),
            "DEPLOY_ASSETS_WORK_DIR": str(self.root / "ours" / "work"),
            "DEPLOY_ASSETS_CACHE_DIR": str(self.root / "ours" / "cache"),
            "DEPLOY_ASSETS_GOCACHE": str(self.root / "gocache" / "ours"),
        }

    def ours(
        self, case: str, tag: str, env: dict[str, str] | None = None, commit: str | None = None
    ) -> None:
        """Our release of tag (at commit), as `deploy-assets release` runs it; env: another worker's."""
        env = env or self.ours_env(self.remote)
        self.tag(tag, commit)
        out = self.root / "ours" / f"{case}.json"
        argv = [
            PYTHON,
            "-m",
            "misc.bench.release_child",
            tag,
            "--run-key",
            f"{tag}@{commit or self.commit}",
            "--out",
            str(out),
        ]
        load = load_average()
        child = run_child(argv, env, self.root / "logs" / f"ours-{case}.log", REPO_ROOT)
        result = json.loads(out.read_text()) if out.exists() else {}
        if result.get("run_id"):
            result.update(run_facts(result["run_id"], env["DAGSTER_HOME"]))
        if child.returncode != 0 or not result.get("success"):
            raise RuntimeError(
                f"our release {tag} ({case}) failed: {result.get('error')}; log {child.log}:\n"
                f"{child.log.read_text()[-3000:]}"
            )
        self.results[f"ours_{case}"] = {
            **result,
            "wall_s": child.wall_s,
            "cpu_s": child.cpu_s,
            "services_cpu_s": child.services_cpu_s,
            "maxrss_mb": child.maxrss_mb,
            "tree_peak_mb": child.tree_peak_mb,
            "load": load,
        }
        report.progress(f"ours {case} ({tag})", child.wall_s)

    def drop_images(self, who: str) -> None:
        """Remove a contender's images from the engine, and the engine's BuildKit cache (kept apart
        from images, it would hand a later "cold" release its image builds for free)."""
        import docker

        client = docker.from_env(timeout=300)
        prefix = self.stacks[who]["registry"] + "/"
        for image in client.images.list():
            for ref in image.tags:
                if ref.startswith(prefix):
                    client.images.remove(ref, force=True)
        client.api.prune_builds(all=True)

    def teardown(self) -> None:
        """Stop every server the bench started, by pid (grace, then SIGKILL), then drop images."""
        for proc in reversed(self.started):
            if killed := stop(proc, grace=5):
                print(f"bench: {proc.name} (pid {proc.pid}) killed hard: {killed}", file=sys.stderr)
        for who in self.stacks:
            try:
                self.drop_images(who)
            except Exception as exc:  # cleanup must not hide the bench's own error
                print(f"bench: could not remove {who} images: {exc}", file=sys.stderr)


def run(bench: Bench, cases: set[str]) -> None:
    bench.setup()
    report.progress(f"set-up: {bench.services} ms at {bench.commit[:12]} in {bench.root}", 0)
    if "old" in cases:
        bench.old("cold", f"{VERSION}-alpha.1")
        bench.old("warm", f"{VERSION}-alpha.2")
        bench.drop_images("old")
    if "floor" in cases:
        bench.floor()  # right before ours: the overhead compares two runs under the same machine load
    if "ours" in cases:
        bench.ours("cold", f"{VERSION}-alpha.1")
        bench.ours("warm", f"{VERSION}-alpha.2")
        bench.ours("staging", f"{VERSION}-rc.1")
        bench.ours("promotion", VERSION)
    if "daemon" in cases:
        daemon.case(bench)
    if "fresh" in cases:
        fresh.cases(bench)
    if "sensor" in cases:
        sensor.case(bench)


def cases_arg(text: str) -> set[str]:
    """ "ours,daemon" -> those cases and the ones they are compared with."""
    chosen = {c.strip() for c in text.split(",") if c.strip()}
    if unknown := chosen - set(CASES):
        raise argparse.ArgumentTypeError(
            f"unknown cases {sorted(unknown)}; the cases are {','.join(CASES)}"
        )
    return chosen.union(*(NEEDS.get(c, set()) for c in chosen))


def execute(bench: Bench, cases, keep: bool) -> None:
    """The cases (a set of CASES, or a function of the bench), then teardown even when one fails.
    The folder goes only after its servers did, and stays when a case failed."""
    try:
        try:
            cases(bench) if callable(cases) else run(bench, cases)
        finally:
            bench.teardown()
    except BaseException:
        bench.root.mkdir(parents=True, exist_ok=True)
        (bench.root / "results-partial.json").write_text(
            json.dumps(bench.results, indent=2, default=str)
        )
        print(
            f"bench: failed; logs, state and results-partial.json kept in {bench.root}",
            file=sys.stderr,
        )
        raise
    if not keep:
        shutil.rmtree(bench.root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--root", type=Path, help="working folder (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "bench-results")
    parser.add_argument(
        "--binary-mb",
        type=generator.mb_range_arg,
        metavar="LOW-HIGH",
        help="realistic binaries: LOW-HIGH MB each (e.g. 25-45) from embedded payloads, so S3 "
        "takes them as multipart uploads and promotion copies them as such",
    )
    parser.add_argument(
        "--cases",
        type=cases_arg,
        default=set(CASES),
        metavar="A,B",
        help=f"run only these cases (and those they are compared with): {','.join(CASES)}",
    )
    parser.add_argument(
        "--light",
        action="store_true",
        help="a tiny repo (2 records per package), to check the bench itself: its figures mean nothing",
    )
    args = parser.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="deploy-assets-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        root.resolve(),
        args.services,
        args.binary_mb,
        records={"shared_records": 2, "service_records": 2} if args.light else None,
    )
    started, load_before = time.monotonic(), load_average()
    execute(bench, args.cases, args.keep)
    bench.results.update(
        {
            "total_s": time.monotonic() - started,
            "load_before": load_before,
            "load_after": load_average(),
            "cpus": os.cpu_count(),
        }
    )
    text = report.render(bench.results)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.results / f"bench-n{args.services}-{stamp}.txt").write_text(text + "\n")
    (args.results / f"bench-n{args.services}-{stamp}.json").write_text(
        json.dumps(bench.results, indent=2, default=str)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
