"""The store decision of one S3 object: leave it, refuse, copy it server-side, or upload it.

Plain functions of facts (what the bucket holds at the release key, at an earlier release's key
for the same bytes, and in the build cache), so every branch is tested without S3
(deploy_assets_tests/unit/test_store_decisions.py). The artifacts step gathers the facts and acts
(assets/artifacts.py). Objects are immutable: one that holds other bytes is refused with both
sha256s named, never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from deploy_assets.assets import build_store
from deploy_assets.resources.s3 import S3Object


class Store(Enum):
    ALREADY = build_store.ALREADY  # these bytes are at the release key (a re-run)
    CONFLICT = build_store.CONFLICT  # other bytes are there: refused
    COPY_EARLIER = build_store.COPY_EARLIER  # server-side copy of an earlier release's object
    COPY_CACHE = build_store.COPY_CACHE  # server-side copy of the build cache's entry
    UPLOAD = build_store.UPLOAD  # only this worker has the bytes


@dataclass(frozen=True)
class StoreFacts:
    """What the bucket holds for one binary; None where it holds nothing (or was not asked)."""

    existing: S3Object | None  # at the release key
    earlier: S3Object | None = None  # at the key an earlier release recorded for these bytes
    earlier_release: str = ""  # that release (env|tag)
    cached: S3Object | None = None  # the build cache's entry for the content key


@dataclass(frozen=True)
class StoreDecision:
    how: Store
    action: str  # what the log and the record call it
    source: S3Object | None = None  # the object a copy reads
    reused_from: str = ""
    reason: str = ""  # CONFLICT: the refusal


def store_decision(facts: StoreFacts, uri: str, sha256: str, size: int) -> StoreDecision:
    """How the binary of `sha256`/`size` gets to `uri`, cheapest first (build_store.store_action)."""
    how = Store(build_store.store_action(facts.existing, sha256, size, facts.earlier, facts.cached))
    if how is Store.ALREADY:
        return StoreDecision(how, "already uploaded")
    if how is Store.CONFLICT:
        return StoreDecision(
            how,
            "",
            reason=f"{uri} exists with sha256 "
            f"{facts.existing.sha256 or 'unknown'}, not the built {sha256}: "
            "not overwriting",
        )
    if how is Store.COPY_EARLIER:
        return StoreDecision(
            how, f"copied from {facts.earlier.key}", facts.earlier, facts.earlier_release
        )
    if how is Store.COPY_CACHE:
        return StoreDecision(how, f"copied from the build cache {facts.cached.key}", facts.cached)
    return StoreDecision(how, f"uploaded {size} bytes")


def needs_cache_entry(earlier: S3Object | None, sha256: str) -> bool:
    """Ask for the build cache's entry only when no earlier release's object has these bytes
    (e.g. prod's lambdas, which staging only prebuilt)."""
    return earlier is None or earlier.sha256 != sha256


def failed_cache_copy(
    there: tuple[str, int], sha256: str, size: int, cache_uri: str, name: str
) -> str | None:
    """After a refused copy of the cache entry: None when the entry holds our bytes (the write
    itself failed, as an upload would: re-raise); else the warning, and our bytes are uploaded."""
    if there == (sha256, size):
        return None
    return f"{cache_uri} holds sha256 {there[0]}, not the built {sha256}: uploading {name} instead"


def record_refusal(uri: str, there: tuple[str, int], sha256: str, size: int) -> str:
    """A record object holds other bytes: name both sha256s and what to do. The bucket keeps what
    it has, so a reader who verified it before still can."""
    return (
        f"{uri} already holds sha256 {there[0]} ({there[1]} bytes); "
        f"this run would write sha256 {sha256} ({size} bytes): the release record is immutable, "
        "not overwriting. Release a new tag, or remove the object on purpose if it is known bad"
    )
