"""The released guideline versions, named by version and content digest.

A pathway's input names its definition by reference (:class:`GuidelineRef`) instead of carrying
the whole definition: every history, continue-as-new and cached workflow would otherwise repeat
it. Workers resolve a reference from ``seeds/``, where every released version stays. The digest
is the SHA-256 of the seed file's bytes, so a released file can never change under a patient;
a reference that matches no seed fails loudly (:class:`UnknownGuideline`), it never falls back
to another version.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pathway import guideline
from pathway.guideline import PathwayDefinition


class GuidelineRef(BaseModel):
    """A released guideline definition, by version and the SHA-256 of its seed file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the seed file's bytes, hex.")


class UnknownGuideline(LookupError):
    """A reference that no seed on this machine matches; the message names the field and why."""


class _Release(BaseModel):
    ref: GuidelineRef
    definition: PathwayDefinition


_lock = threading.Lock()
_loaded: dict[Path, dict[str, _Release]] = {}


def releases() -> dict[str, _Release]:
    """Every seed in ``seeds/``, by digest; read once per process (workers share the objects)."""
    seeds = guideline.SEEDS_DIR
    with _lock:
        found = _loaded.get(seeds)
        if found is None:
            found = {}
            for path in sorted(seeds.glob("vcf_pathway_*.json")):
                raw = path.read_bytes()
                defn = PathwayDefinition.model_validate(json.loads(raw.decode("utf-8")))
                ref = GuidelineRef(version=defn.version, digest=hashlib.sha256(raw).hexdigest())
                found[ref.digest] = _Release(ref=ref, definition=defn)
            _loaded[seeds] = found
        return found


def resolve(ref: GuidelineRef) -> PathwayDefinition:
    """The released definition ``ref`` names; :class:`UnknownGuideline` if no seed matches it."""
    release = releases().get(ref.digest)
    if release is None:
        known = ", ".join(f"{r.ref.version} ({r.ref.digest[:12]})" for r in releases().values()) or "none"
        raise UnknownGuideline(f"guideline.digest: no released definition has digest {ref.digest[:12]}... "
                               f"(version {ref.version}); this worker knows {known}")
    if release.ref.version != ref.version:
        raise UnknownGuideline(f"guideline.version: digest {ref.digest[:12]}... is version "
                               f"{release.ref.version}, not {ref.version}")
    return release.definition


def reference_for(defn: PathwayDefinition) -> GuidelineRef | None:
    """The reference of a released definition, or None for one that no seed holds (a what-if)."""
    for release in releases().values():
        if release.ref.version == defn.version and release.definition == defn:
            return release.ref
    return None
