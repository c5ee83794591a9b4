"""Dashboard fixtures: the tiny bundle with the training record the pipeline writes, and a
model card for it built by the real ``model_card`` stage."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.services.scoring.bundle import load_bundle, write_bundle
from tests.card_inputs import bundle_spec, write_inputs
from training import model_card


@pytest.fixture(scope="session")
def carded(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle, card): the tiny bundle with ``train``'s metadata, and its model card."""
    root = tmp_path_factory.mktemp("card")
    bundle = load_bundle(tiny_bundle)
    metadata = {**bundle_spec()["metadata"], **bundle.metadata}
    directory = root / "bundle"
    write_bundle(dataclasses.replace(bundle, metadata=metadata), directory)
    write_inputs(root, model_card.bundle_version(directory))
    card = root / "card"
    model_card.main(
        [
            *("--metrics-dir", str(root / "metrics")),
            *("--bundle", str(directory)),
            *("--reports-dir", str(root / "reports")),
            *("--out", str(card)),
        ]
    )
    return directory, card
