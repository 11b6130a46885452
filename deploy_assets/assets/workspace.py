"""Per-release working folder and the records stages hand to each other.

Stages of one release run as separate steps (maybe separate processes), so what one stage
learned (the commit, the services, each build's content key) is written next to the release's
files, and the durable facts also go into Dagster metadata, where later releases find them.

The folder is a cache of those facts, not their home: a step whose folder is empty (a fresh
container, one asset materialized from the UI) gets them back from the instance, git and the
build cache (assets/workspace_restore.py) instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import dagster as dg

from deploy_assets.assets.release_claim import claim_release
from deploy_assets.assets.workspace_restore import SharedRelease
from deploy_assets.names import partition_key, split_partition_key
from deploy_assets.plan import Service
from deploy_assets.tags import Release, check_partition


@dataclass(frozen=True)
class BuiltBinary:
    service: str
    kind: str
    platform: str
    path: str  # bin_arm64/ms/ms_core
    sha256: str
    size: int
    content_key: str
    reused_from: str | None


class ReleaseWorkspace:
    def __init__(self, work_dir: Path, env: str, tag: str, shared: SharedRelease | None = None):
        self.root = Path(work_dir) / env / tag
        self.src = self.root / "src"
        self.out = self.root / "out"
        self.shared = shared  # where the records come from when this folder lacks them

    @classmethod
    def for_context(
        cls, context: dg.AssetExecutionContext, work_dir: str | Path
    ) -> tuple[ReleaseWorkspace, Release]:
        """The release of the step's partition, once this run holds it (assets/release_claim.py):
        every step that writes comes here first, so a second run of the release stops here."""
        env, tag = split_partition_key(context.partition_key)
        release = check_partition(tag, env)
        if not isinstance(context, dg.AssetCheckExecutionContext):  # checks only read
            claim_release(context.instance, context.run.run_id, partition_key(env, tag))
        return cls(
            Path(work_dir), env, tag, SharedRelease(context, partition_key(env, tag))
        ), release

    def _write(self, name: str, data: object) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(self.root / name)

    def _read(self, name: str, produced_by: str) -> dict:
        path = self.root / name
        if not path.exists():
            raise RuntimeError(
                f"{path} is missing: materialize {produced_by} of this release first"
            )
        return json.loads(path.read_text())

    def write_source(
        self,
        commit: str,
        module_dir: Path,
        services: list[Service],
        go_mod: str | None,
        toolchain: str,
    ) -> None:
        self._write(
            "source.json",
            {
                "commit": commit,
                "module_dir": str(module_dir),
                "go_mod_version": go_mod,
                "toolchain": toolchain,
                "services": [asdict(s) for s in services],
            },
        )

    def source(self) -> dict:
        if not (self.root / "source.json").exists() and self.shared is not None:
            self._write("source.json", self.shared.source(self.src))
        return self._read("source.json", "the source asset")

    def services(self) -> list[Service]:
        return [Service(**s) for s in self.source()["services"]]

    def write_builds(self, builds: list[BuiltBinary]) -> None:
        current = {f"{b['service']}/{b['platform']}": b for b in self._builds_raw()}
        current.update({f"{b.service}/{b.platform}": asdict(b) for b in builds})
        self._write("builds.json", list(current.values()))

    def _builds_raw(self) -> list[dict]:
        path = self.root / "builds.json"
        return json.loads(path.read_text()) if path.exists() else []

    def builds(self) -> dict[tuple[str, str], BuiltBinary]:
        if not (self.root / "builds.json").exists() and self.shared is not None:
            self._restore_builds()
        return {
            (b["service"], b["platform"]): BuiltBinary(**b)
            for b in self._read("builds.json", "the binaries")
        }

    def _restore_builds(self) -> None:
        """builds.json from the binaries' materializations, the bytes from the build cache; a
        binary whose bytes cannot be had is named now, before the step looks for its file."""
        builds = self.shared.builds(self.services())
        absent = self.shared.place_bytes(builds, self.out)
        if absent:
            self.shared.context.log.warning(
                f"{self.shared.partition}: no bytes on this worker for {', '.join(absent)} (recorded by the "
                "binaries step of another run): a step that must upload or build from them will fail; "
                "materialize the binaries again in this run"
            )
        self._write("builds.json", builds)

    def write_prebuilds(self, builds: list[BuiltBinary]) -> None:
        """Binaries built for the promotion of this commit, not part of this release."""
        self._write("prebuilds.json", [asdict(b) for b in builds])

    def prebuilds(self) -> dict[tuple[str, str], BuiltBinary]:
        path = self.root / "prebuilds.json"
        raw = json.loads(path.read_text()) if path.exists() else []
        return {(b["service"], b["platform"]): BuiltBinary(**b) for b in raw}

    def routes_file(self) -> Path:
        """out/routes.json; on a worker that never ran `routes` of this release, restored from
        what was recorded (the uploaded object, else the tree parsed again) when there is one."""
        path = self.out / "routes.json"
        if not path.exists() and self.shared is not None:
            data = self.shared.routes(self.services(), Path(self.source()["module_dir"]))
            if data is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        return path
