"""Level-aware care (vcf-1.2): every order that images or treats the spine names the region of the
level it is for, and the nerve-block offer stays within the levels the guideline speaks of."""

from __future__ import annotations

import pytest

from pathway.contract import FRACTURE_LEVELS
from tests.unit.walk import Walk, confirmed


def cpt(definition, kind: str, level: str) -> list[str]:
    return [c.code for c in definition.order_for(kind, level)[1]]


@pytest.mark.parametrize("level, mri, film, augmentation", [
    ("T8", ["72146"], ["72070"], ["22513", "22510"]),
    ("T11", ["72146"], ["72080"], ["22513", "22510"]),
    ("L1", ["72148"], ["72080"], ["22514", "22511"]),
    ("L2", ["72148"], ["72100"], ["22514", "22511"]),
    ("L5", ["72148"], ["72100"], ["22514", "22511"]),
])  # fmt: skip
def test_orders_carry_the_codes_of_the_fractured_levels_region(definition, level, mri, film, augmentation):
    assert cpt(definition, "order_mri", level) == mri
    assert cpt(definition, "order_radiograph", level) == film
    assert cpt(definition, "refer_vertebral_augmentation", level) == augmentation
    assert cpt(definition, "order_adjacent_fracture_screening", level) == ["72070", "72100"]


def test_every_level_has_its_region_for_every_level_aware_order(definition):
    for kind in definition.level_aware.orders:
        assert all(definition.region(kind, level) for level in FRACTURE_LEVELS)


def test_an_earlier_version_keeps_the_action_kinds_own_codes(definition_v1_1):
    assert definition_v1_1.order_for("order_mri", "T8")[1] == definition_v1_1.actions["order_mri"].codes


def test_rationales_name_the_region(definition):
    w = confirmed(Walk(definition, fracture_level="T8", pain_nrs=8))
    w.pain(80, 7)
    w.until(84)
    assert "MRI thoracic spine" in w.of("order_mri")[0].rationale
    assert "X-ray thoracic spine" in w.of("order_radiograph")[0].rationale
    (ref,) = w.of("refer_vertebral_augmentation")
    assert "T8 fracture (thoracic: CPT 22513 / CPT 22510)" in ref.rationale and ref.details["level"] == "T8"


def test_an_mri_for_a_new_level_images_the_new_levels_region(definition):
    w = Walk(definition, fracture_level="L2")
    w.event(30, type="radiograph", height_loss_pct=25, new_fracture_level="T10")
    new_mri = next(a for a in w.of("order_mri") if a.details["level"] == "T10")
    assert "MRI thoracic spine" in new_mri.rationale
    assert cpt(definition, "order_mri", new_mri.details["level"]) == ["72146"]


@pytest.mark.parametrize("level, offered", [("T8", False), ("L1", False), ("L2", True), ("L3", True), ("L4", True),
                                            ("L5", False)])
def test_the_nerve_block_offer_only_for_l2_to_l4(definition, level, offered):
    w = Walk(definition, fracture_level=level, pain_nrs=8)
    w.pain(10, 8)
    w.pain(20, 9)
    assert bool(w.of("offer_nerve_block")) is offered
    notes = [n for n in w.notes if n.id == "offer_nerve_block:out_of_scope"]
    assert len(notes) == (0 if offered else 1)
    if notes:
        assert f"evidence does not cover {level}" in notes[0].text
        assert "Nerve Block Option (ref. 2)" in notes[0].citation
        assert notes[0].day == 10


def test_before_vcf_1_2_any_level_is_offered(definition_v1_1):
    w = Walk(definition_v1_1, fracture_level="T8", pain_nrs=8)
    w.pain(10, 8)
    assert w.of("offer_nerve_block")


def test_every_imaging_order_names_the_level_its_codes_are_chosen_by(definition):
    """The order book picks an order's codes by ``details.level``: screenings carry it too."""
    w = confirmed(Walk(definition, fracture_level="T8", pain_nrs=3))
    w.pain(20, 2)
    w.pain(30, 6)  # a flare: a screening at once
    w.until(183)
    imaging = [a for a in w.actions if a.kind in ("order_mri", "order_radiograph", "order_adjacent_fracture_screening")]
    assert {a.id for a in w.of("order_adjacent_fracture_screening")} == {
        "order_adjacent_fracture_screening:flare:30", "order_adjacent_fracture_screening:day-182"}
    assert all(a.details["level"] == "T8" for a in imaging)
