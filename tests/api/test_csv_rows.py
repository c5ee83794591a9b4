"""The CSV forms of the schemas (app/schemas/csv_rows.py, app/schemas/answers.py) that the
batch command and the dashboard's upload share: a row in, the answer cells out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.schemas.answers import ANSWER_COLUMNS, answer_cells, unanswered_cells
from app.schemas.csv_rows import error_text, parse_row
from app.services.predictor import Prediction
from feature_repo.request_features import REQUEST_DEFAULTS
from fraud_model.scorer import Reason

ROW = {
    "transaction_id": "t1",
    "customer_id": "C1",
    "terminal_id": "T1",
    "timestamp": "2025-06-01T12:00:00Z",
    "amount": " 10.5 ",
    "is_foreign": "Yes",
    "channel": "",
    "note": "not a field",
}


def test_a_row_is_validated_as_the_api_validates_json() -> None:
    parsed = parse_row(ROW)
    assert parsed.amount == 10.5 and parsed.is_foreign is True
    assert parsed.channel == REQUEST_DEFAULTS["channel"]  # an empty optional cell: the default


def test_a_bad_row_says_which_fields_and_never_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_row(ROW | {"amount": "abc", "customer_id": "has space"})
    text = error_text(caught.value)
    assert text.startswith("customer_id: ") and "; amount: " in text
    assert "abc" not in text and "has space" not in text


def test_answer_cells_and_unanswered_cells_fill_the_same_columns() -> None:
    reasons = [Reason("R", "f", "rules", 1.0, 2.0)]
    p = Prediction(0.25, "LOW", "approve", None, 0.5, reasons, "model", ["feature_store:timeout"])
    cells = answer_cells(p, "v1")
    assert tuple(cells) == ANSWER_COLUMNS
    assert cells["fraud_probability"] == "0.250000" and cells["ae_score"] == ""
    assert cells["reasons"] == "R" and cells["degraded"] == "feature_store:timeout"
    row = {"transaction_id": "t2", "error": "stale"}
    assert row | unanswered_cells("amount: bad") == row | dict.fromkeys(ANSWER_COLUMNS, "") | {
        "error": "amount: bad"
    }
    assert list(row | unanswered_cells("x")) == ["transaction_id", "error", *ANSWER_COLUMNS[:-1]]
