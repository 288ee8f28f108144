"""The guideline by reference: released versions by version and content digest."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from cohort.whatif import apply
from pathway.guideline import SEEDS_DIR, load_definition, released_definitions
from pathway.releases import GuidelineRef, UnknownGuideline, reference_for, releases, resolve
from tests.helpers import enrollment
from workflows.models import PathwayInput


def test_every_released_version_resolves_by_its_digest():
    by_version = {r.ref.version: r.ref for r in releases().values()}
    assert set(by_version) == set(released_definitions()) >= {"vcf-1.1", "vcf-1.2"}
    for version, defn in released_definitions().items():
        assert resolve(by_version[version]) == defn
        assert reference_for(defn) == by_version[version]


def test_the_digest_is_the_seed_files_sha256():
    ref = reference_for(load_definition())
    assert ref is not None and ref.version == "vcf-1.2"
    assert ref.digest == hashlib.sha256((SEEDS_DIR / "vcf_pathway_v1_2.json").read_bytes()).hexdigest()


def test_an_unknown_digest_fails_naming_the_field_never_another_version():
    with pytest.raises(UnknownGuideline, match=r"guideline\.digest: no released definition has digest 000000000000"):
        resolve(GuidelineRef(version="vcf-1.2", digest="0" * 64))
    v11 = reference_for(released_definitions()["vcf-1.1"])
    assert v11 is not None
    with pytest.raises(UnknownGuideline, match=r"guideline\.version: .* is version vcf-1\.1, not vcf-1\.2"):
        resolve(GuidelineRef(version="vcf-1.2", digest=v11.digest))


def test_the_input_names_a_released_definition_and_carries_a_changed_one_whole():
    released = PathwayInput.keeping(load_definition(), enrollment=enrollment("pt-ref"))
    assert released.definition is None and released.guideline == reference_for(load_definition())
    assert len(released.model_dump_json()) < 600  # the 12 KB definition no longer travels
    changed, _ = apply(load_definition(), ["persistent_pain_nrs=6"])
    what_if = PathwayInput.keeping(changed, enrollment=enrollment("pt-ref"))
    assert what_if.guideline is None and what_if.resolved() == changed


def test_the_input_needs_exactly_one_guideline():
    with pytest.raises(ValidationError, match="guideline: give either"):
        PathwayInput(enrollment=enrollment("pt-ref"))
    with pytest.raises(ValidationError, match="guideline: give either"):
        PathwayInput(enrollment=enrollment("pt-ref"), definition=load_definition(),
                     guideline=reference_for(load_definition()))
