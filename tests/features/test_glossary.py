"""Every feature a FeatureService serves has words for the dashboard's explanations."""

from __future__ import annotations

from feature_repo import definitions
from feature_repo.glossary import FEATURES, term


def _served() -> set[str]:
    names: set[str] = set()
    for service in (definitions.fraud_detection_v1, definitions.fraud_detection_v2):
        for projection in service.feature_view_projections:
            names |= {f.name for f in projection.features}
    return names


def test_every_served_feature_has_an_entry() -> None:
    served = _served()
    assert len(served) >= 43  # v2's model features at least
    missing = sorted(served - set(FEATURES))
    assert not missing, f"add these to feature_repo/glossary.py: {missing}"


def test_entries_read_as_phrases() -> None:
    for name, entry in FEATURES.items():
        assert entry.label and entry.label == entry.label.strip(), name
        assert entry.label[0].islower() or entry.label[0].isdigit(), name  # mid-sentence
    assert term("brand_new_feature").label == "brand new feature"
