"""The old dev workflow, step by step as GitHub Actions ran it, for the side-by-side benchmark.

checkout → parse MS routes → `go build` per service in a loop (linux/arm64, CGO off) →
`docker build` + `docker push` per service with the docker CLI → `aws s3 cp --recursive` of the
binaries → GitOps bump of gitops-development. No reuse between runs except what the tools
keep themselves (GOCACHE, the engine's layer cache, the registry's blobs), as on a runner
with a warm cache.

The S3 step uses the `aws` CLI when one runs on this machine (as the workflow did); otherwise
boto3 uploads the files one after the other (`--uploader` says which was used).

    python -m misc.bench.old_flow --remote R --tag T --work W --registry H:P --s3-endpoint URL \
        --bucket B --gitops-root G --gocache DIR --out result.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from deploy_assets.assets.routes import parse_routes
from deploy_assets.config import DOCKERFILES_DIR

GIT_ID = {
    "GIT_AUTHOR_NAME": "old-workflow",
    "GIT_AUTHOR_EMAIL": "ci@localhost",
    "GIT_COMMITTER_NAME": "old-workflow",
    "GIT_COMMITTER_EMAIL": "ci@localhost",
}


def run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )
    return proc.stdout


def aws_cli() -> str | None:
    """The `aws` CLI if one actually runs here (a pyenv shim may point at nothing)."""
    found = shutil.which("aws")
    if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return found
    return None


class Phases:
    """Wall seconds per workflow phase; a phase entered once per service adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started


def old_flow(args: argparse.Namespace) -> dict:
    phases, checkout = Phases(), args.work / "checkout"
    go_env = {
        "CGO_ENABLED": "0",
        "GOOS": "linux",
        "GOARCH": "arm64",
        "GOCACHE": str(args.gocache),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
    }
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    with phases("checkout"):  # actions/checkout: a shallow clone of the tag
        run(
            [
                "git",
                "clone",
                "--quiet",
                "--depth",
                "1",
                "--branch",
                args.tag,
                "--",
                args.remote,
                str(checkout),
            ]
        )
    with phases("parse routes"):
        names = sorted(p.name for p in (checkout / "cmd" / "ms").iterdir() if p.is_dir())
        routes = {name: parse_routes(checkout / "cmd" / "ms" / name) for name in names}
    with phases("go build (per service)"):
        for name in names:
            run(
                [args.go, "build", "-o", f"bin_arm64/ms/{name}", f"./cmd/ms/{name}"],
                cwd=checkout,
                env=go_env,
            )
    docker_env = {"DOCKER_BUILDKIT": "0", "DOCKER_CLI_HINTS": "false"}
    for name in names:
        ref = f"{args.registry}/{name}:{args.tag}"
        context = args.work / "docker" / name
        context.mkdir(parents=True)
        shutil.copyfile(DOCKERFILES_DIR / "ms.Dockerfile", context / "Dockerfile")
        shutil.copy2(checkout / "bin_arm64" / "ms" / name, context / "service")
        with phases("docker build"):
            run(
                [
                    "docker",
                    "build",
                    "--quiet",
                    "--platform",
                    "linux/arm64",
                    "-t",
                    ref,
                    str(context),
                ],
                env=docker_env,
            )
        with phases("docker push"):
            run(["docker", "push", "--quiet", ref], env=docker_env)
    destination = f"s3://{args.bucket}/binaries/{args.tag}/"
    with phases("s3 upload"):
        if args.uploader == "aws-cli":
            run(
                [
                    aws_cli() or "aws",
                    "s3",
                    "cp",
                    "--recursive",
                    "--only-show-errors",
                    "--endpoint-url",
                    args.s3_endpoint,
                    str(checkout / "bin_arm64" / "ms"),
                    destination,
                ]
            )
        else:
            import boto3

            s3 = boto3.client("s3", endpoint_url=args.s3_endpoint, region_name="eu-west-1")
            for name in names:
                s3.upload_file(
                    str(checkout / "bin_arm64" / "ms" / name),
                    args.bucket,
                    f"binaries/{args.tag}/{name}",
                )
    with phases("gitops bump"):
        repo = args.work / "gitops"
        run(
            [
                "git",
                "clone",
                "--quiet",
                "--",
                f"{args.gitops_root}/gitops-development.git",
                str(repo),
            ]
        )
        for name in names:
            app = repo / "apps" / name
            app.mkdir(parents=True, exist_ok=True)
            (app / "kustomization.yaml").write_text(
                f"images:\n- name: {name}\n  newName: {args.registry}/{name}\n  newTag: {args.tag}\n"
            )
            (app / "routes.json").write_text(json.dumps(routes[name], indent=2) + "\n")
        run(["git", "add", "-A"], cwd=repo)
        if run(["git", "status", "--porcelain"], cwd=repo).strip():
            run(
                ["git", "commit", "--quiet", "-m", f"deploy(dev): {' '.join(names)} -> {args.tag}"],
                cwd=repo,
                env=GIT_ID,
            )
            run(["git", "push", "--quiet", "origin", "HEAD:main"], cwd=repo)
    return {"phases": phases.seconds, "services": len(names), "uploader": args.uploader}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    for flag in ("--remote", "--tag", "--registry", "--s3-endpoint", "--bucket", "--gitops-root"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--gocache", type=Path, required=True)
    parser.add_argument("--go", default=str(Path(sys.executable).parent / "go"))
    parser.add_argument(
        "--uploader", choices=("aws-cli", "boto3"), default="aws-cli" if aws_cli() else "boto3"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    result = old_flow(args)
    result["wall_s"] = time.monotonic() - t0
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
