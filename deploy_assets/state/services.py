"""The service list the code location is built from: state refreshed on purpose, not at load.

Per-service assets need the list when the code location loads, and loading happens in the code
server, in every run worker (a fresh container in production) and in every step process. If each
of them fetched the source remote, a remote that is down would change the graph under a running
release and every load would pay a fetch. So the list lives in a small JSON file under the cache
dir, written atomically by `deploy-assets refresh`, by the tag sensor when a new tag brings a
service, and by `deploy-assets release`. Loading reads it and runs no git; only when no state
exists yet (or it was discovered for another remote or source layout) does a load discover once,
and it says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from deploy_assets.config import KINDS, PipelineConfig, Settings
from deploy_assets.plan import PlanError, Service, discover_services
from deploy_assets.resources.credentials import redact_url
from deploy_assets.resources.git import GitError, GitSourceResource

log = logging.getLogger(__name__)

STATE_FORMAT = 1
REFRESH_HINT = "run `deploy-assets refresh` to rediscover the services and rewrite it"


class ServiceStateError(RuntimeError):
    """The state file cannot be used, or no state exists and none can be discovered."""


def state_path(settings: Settings) -> Path:
    return Path(settings.cache_dir) / "state" / "services.json"


def layout_fingerprint(config: PipelineConfig) -> str:
    """What discovery reads besides the files: a list found with other globs is not this one."""
    raw = json.dumps(
        [config.source.model_dump(mode="json"), list(config.platforms)], sort_keys=True
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ServiceState:
    services: tuple[Service, ...]
    commit: str  # where they were discovered
    discovered_at: str  # ISO 8601, UTC
    remote: str  # redacted: the file may be read by anyone who can read the cache
    layout: str  # layout_fingerprint of the config they were discovered with

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.services]

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "format": STATE_FORMAT,
                    "commit": self.commit,
                    "discovered_at": self.discovered_at,
                    "remote": self.remote,
                    "layout": self.layout,
                    "services": [dataclasses.asdict(s) for s in self.services],
                },
                indent=2,
            )
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str, origin: str) -> ServiceState:
        try:
            raw = json.loads(text)
            if raw.get("format") != STATE_FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {STATE_FORMAT}")
            return cls(
                tuple(Service(**s) for s in raw["services"]),
                str(raw["commit"]),
                str(raw["discovered_at"]),
                str(raw["remote"]),
                str(raw["layout"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ServiceStateError(
                f"service state {origin} is corrupt ({type(exc).__name__}: {exc}); {REFRESH_HINT}"
            ) from None

    def matches(self, settings: Settings, config: PipelineConfig) -> bool:
        return self.remote == redact_url(
            settings.source_repo
        ) and self.layout == layout_fingerprint(config)


def read_state(path: Path) -> ServiceState | None:
    """The recorded state, None when there is none; a file that exists but cannot be used is an
    error naming it, never an empty list (that would drop every per-service asset)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceStateError(
            f"service state {path} is unreadable ({exc}); {REFRESH_HINT}"
        ) from None
    return ServiceState.from_json(text, str(path))


def write_state(path: Path, state: ServiceState) -> None:
    """Atomically: a reader (another process loading the code location) sees the old file or
    the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(state.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_state(
    services: list[Service] | tuple[Service, ...],
    commit: str,
    settings: Settings,
    config: PipelineConfig,
) -> ServiceState:
    return ServiceState(
        tuple(services),
        commit,
        datetime.now(UTC).isoformat(timespec="seconds"),
        redact_url(settings.source_repo),
        layout_fingerprint(config),
    )


def source_git(settings: Settings) -> GitSourceResource:
    return GitSourceResource(remote=settings.source_repo, cache_dir=str(settings.cache_dir))


@dataclass(frozen=True)
class Refresh:
    before: ServiceState | None
    after: ServiceState

    @property
    def added(self) -> list[str]:
        return sorted(set(self.after.names) - set(self.before.names if self.before else ()))

    @property
    def removed(self) -> list[str]:
        return sorted(set(self.before.names if self.before else ()) - set(self.after.names))


def refresh(settings: Settings, config: PipelineConfig, ref: str = "HEAD") -> Refresh:
    """Fetch, discover the services at REF (the default branch) and record them. Raises GitError
    when the remote does not answer and PlanError when the monorepo's services are invalid; the
    state is left as it was in both cases."""
    path = state_path(settings)
    try:
        before = read_state(path)
    except ServiceStateError:
        before = None  # what refresh is for
    git = source_git(settings)
    git.fetch()
    commit = git.resolve(ref)
    services = discover_services(git.list_files(commit), config.source, config.platforms)
    after = new_state(services, commit, settings, config)
    write_state(path, after)
    return Refresh(before, after)


def load_services(settings: Settings, config: PipelineConfig) -> ServiceState:
    """The list a code location is built from: the recorded state, read without any git.

    With no state yet (a fresh cache) or one recorded for another remote or source layout, it
    discovers once (a fetch) and records it. A remote that cannot be read then fails the load,
    naming it: an empty code location would look like a release with no services.
    """
    path = state_path(settings)
    state = read_state(path)
    if state is not None and state.matches(settings, config):
        return state
    why = (
        "none exists yet"
        if state is None
        else "it was discovered for another remote or source layout"
    )
    log.warning(
        "service state %s: %s; discovering the services once from %s (git fetch)",
        path,
        why,
        redact_url(settings.source_repo),
    )
    try:
        done = refresh(settings, config)
    except (GitError, OSError) as exc:
        raise ServiceStateError(
            f"no usable service state at {path} ({why}) and the source remote "
            f"{redact_url(settings.source_repo)} cannot be read: {exc}; run "
            "`deploy-assets refresh` once it answers"
        ) from None
    except PlanError as exc:  # the code location still loads (sensor, UI); every release refuses
        log.error("services of %s cannot be released: %s", redact_url(settings.source_repo), exc)
        return new_state([], "", settings, config)
    log.warning(
        "service state %s written: %s at %s",
        path,
        ", ".join(done.after.names) or "no services",
        done.after.commit[:12],
    )
    return done.after


def add_services(
    settings: Settings, config: PipelineConfig, services: list[Service], commit: str
) -> list[str]:
    """Record services a new tag's commit brought (the sensor's refresh), keeping the recorded
    ones: a service absent from one tag is no reason to drop its assets. Returns the names
    added to the state (none when an earlier tick recorded them already)."""
    path = state_path(settings)
    try:
        current = read_state(path)
    except ServiceStateError:
        current = None
    kept = list(current.services) if current else []
    names = {s.name for s in kept}
    added = [s for s in services if s.name not in names]
    if added:
        write_state(
            path,
            new_state(
                sorted([*kept, *added], key=lambda s: (KINDS.index(s.kind), s.name)),
                commit,
                settings,
                config,
            ),
        )
    return [s.name for s in added]
