"""A release's work folder rebuilt from shared state, for a step that runs alone.

In production every run is a new container or pod with an empty disk, and a click in the UI can
materialize one asset (`images`, `artifacts`, a check) of a release whose `source` and
`binaries` ran in another container. What those steps wrote to their work folder is gone; what
they recorded is not: the instance holds the `source` materialization (commit, toolchain,
services) and each binary's (sha256, size, path and content key per platform), the git remote
holds the commit, and the build cache (assets/build_store.py: this worker's, else the artifact
bucket's) holds the bytes by content key. This module reads them
back into the records the stages hand each other (assets/workspace.py), so the step does what it
would have done in the release's own run.

The step's resources are the code location's own (the run's job carries every top-level
resource), instantiated here as Dagster does for a step, so the remote and bucket are those the
release used, not a second copy of the settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import dagster as dg

from deploy_assets.assets import build_store
from deploy_assets.names import ROUTES_KEY, ROUTES_OBJECT_KEY, SOURCE_KEY, binary_key
from deploy_assets.plan import Service, discover_services
from deploy_assets.records.history import PastMaterialization, latest_for_partition
from deploy_assets.resources.git import GitError


class ReleaseNotRecorded(RuntimeError):
    """What a step needs was neither in its work folder nor recorded by an earlier run."""


class SharedRelease:
    """The recorded facts of one release partition, read for a step whose work folder is empty."""

    def __init__(
        self, context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, partition: str
    ):
        self.context = context
        self.instance = context.instance
        self.partition = partition

    def _resource(self, name: str):
        """The code location's resource `name`, initialized as for a step (EnvVar values resolved)."""
        definition = self.context.job_def.resource_defs.get(name)
        if definition is None:
            raise ReleaseNotRecorded(
                f"{self.partition}: the job has no {name!r} resource to restore the release from"
            )
        with dg.build_resources({name: definition}) as built:
            return getattr(built, name)

    def source_record(self) -> PastMaterialization:
        record = latest_for_partition(self.instance, SOURCE_KEY, self.partition)
        if record is None or not record.metadata.get("commit"):
            raise ReleaseNotRecorded(
                f"{self.partition}: this step's work folder holds no source.json and the instance has no "
                f"materialization of source for {self.partition}: materialize the source asset of "
                f"{self.partition} first (or the whole release)"
            )
        return record

    def source(self, src: Path) -> dict:
        """source.json as `source` wrote it: the facts from its materialization, the same folders
        exported again from git at the recorded commit (fetched first when this worker's mirror
        lacks it)."""
        record = self.source_record()
        facts = record.metadata
        commit = str(facts["commit"])
        git = self._resource("git")
        try:
            git.resolve(commit)
        except (GitError, OSError):  # a fresh worker: no mirror, or one older than the commit
            git.fetch()
        # The folders `source` exported (source_export.py); a record older than that: the whole tree.
        tree = git.export(commit, src, [str(p) for p in facts.get("export_paths") or ["."]])
        module_root, services = self._layout(facts, git, commit)
        self.context.log.info(
            f"{self.partition}: restored the source of {commit[:12]} from run {record.run_id} "
            f"(this worker's work folder was empty): {len(services)} services"
        )
        return {
            "commit": commit,
            "module_dir": str(tree / module_root),
            "go_mod_version": str(facts.get("go_mod_go") or "") or None,
            "toolchain": str(facts.get("toolchain", "")),
            "services": services,
        }

    def _layout(self, facts: dict, git, commit: str) -> tuple[str, list[dict]]:
        """(module root, services as dicts) as `source` saw them: its records when it made them,
        else discovered again in the commit's files with the pipeline config (same rules)."""
        names = list(facts.get("services") or [])
        if facts.get("service_records") and facts.get("module_root") is not None:
            records = [dict(s) for s in facts["service_records"]]
            return str(facts["module_root"]), [s for s in records if s["name"] in names]
        from deploy_assets.config import load_pipeline_config  # the config the code location loads

        config = load_pipeline_config()
        found = {
            s.name: s
            for s in discover_services(git.list_files(commit), config.source, config.platforms)
        }
        missing = [n for n in names if n not in found]
        if missing:
            raise ReleaseNotRecorded(
                f"{self.partition}: services {missing} recorded by source are not found at "
                f"{commit[:12]} with the pipeline config: materialize source of "
                f"{self.partition} again"
            )
        return config.source.module_root, [_as_dict(found[n]) for n in names]

    def builds(self, services: list[Service]) -> list[dict]:
        """Each binary's facts per platform, from the binary materializations of this release."""
        builds = []
        for service in services:
            binary = latest_for_partition(self.instance, binary_key(service), self.partition)
            if binary is None:
                continue  # not built by this env (as it would be absent from builds.json)
            meta = binary.metadata
            for platform in [k.removeprefix("sha256_") for k in meta if k.startswith("sha256_")]:
                builds.append(
                    {
                        "service": service.name,
                        "kind": str(meta.get("kind") or service.kind),
                        "platform": platform,
                        "path": str(meta[f"path_{platform}"]),
                        "sha256": str(meta[f"sha256_{platform}"]),
                        "size": int(meta[f"size_{platform}"]),
                        "content_key": str(meta[f"content_key_{platform}"]),
                        "reused_from": str(meta.get("reused_from") or "") or None,
                    }
                )
        if not builds:
            raise ReleaseNotRecorded(
                f"{self.partition}: this step's work folder holds no builds.json and the instance has no "
                f"binary materialization for {self.partition}: materialize the binaries of {self.partition} "
                "first (or the whole release)"
            )
        return builds

    def place_bytes(self, builds: list[dict], out: Path) -> list[str]:
        """Put each binary's bytes at out/path: from this worker's build cache, else downloaded
        from the bucket's (verified against the sha256 the binaries step recorded; a corrupt
        entry is refused with a warning). Returns the binaries whose bytes could not be had."""
        cache_dir = Path(self._resource("go").cache_dir)
        s3, absent = self._resource("s3"), []
        for platform in sorted({b["platform"] for b in builds}):
            wanted = [
                b
                for b in builds
                if b["platform"] == platform
                and not (
                    (out / b["path"]).is_file() and (out / b["path"]).stat().st_size == b["size"]
                )
            ]
            if not wanted:
                continue
            origins = build_store.fetch(
                s3,
                cache_dir,
                {b["service"]: b["content_key"] for b in wanted},
                {b["service"]: build_store.Recorded(b["sha256"], b["size"]) for b in wanted},
                self.context.log.warning,
            )
            for b in wanted:
                cached = build_store.cache_path(cache_dir, b["content_key"], b["service"])
                if origins[b["service"]] == build_store.BUILT or not cached.is_file():
                    absent.append(f"{b['service']}/{platform}")
                    continue
                build_store.place(cached, out / b["path"])
        return absent

    def routes(self, services: list[Service], module_dir: Path) -> bytes | None:
        """routes.json of this release: the uploaded object if there is one (checked against its
        recorded sha256), else parsed again from the exported tree if `routes` materialized
        (the same commit gives the same bytes); None when neither was recorded."""
        uploaded = latest_for_partition(self.instance, ROUTES_OBJECT_KEY, self.partition)
        if uploaded is not None:
            data = self._resource("s3").get_bytes(str(uploaded.metadata["s3_key"]))
            if hashlib.sha256(data).hexdigest() != uploaded.metadata.get("sha256"):
                raise ReleaseNotRecorded(
                    f"{self.partition}: routes.json at {uploaded.metadata['s3_key']} is not "
                    f"the recorded sha256 {uploaded.metadata.get('sha256')}: not using it"
                )
            return data
        if latest_for_partition(self.instance, ROUTES_KEY, self.partition) is None:
            return None
        from deploy_assets.assets.routes import parse_routes  # that module imports ours

        table = [
            {"service": s.name, **route}
            for s in services
            if s.kind == "ms"
            for route in parse_routes(module_dir / s.path)
        ]
        return (json.dumps(table, indent=2) + "\n").encode()  # as the routes step writes it


def _as_dict(service: Service) -> dict:
    return asdict(service)  # as source.json holds it (ReleaseWorkspace.write_source)
