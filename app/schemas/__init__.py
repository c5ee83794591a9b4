"""The service's wire formats: request and response models, error bodies, answer encoding.

- :mod:`app.schemas.transactions`: scoring and feedback requests and answers
  (``TransactionIn``, ``BatchIn``, ``ScoreOut``, ``BatchOut``, ``FeedbackIn``, ...);
- :mod:`app.schemas.status`: health, readiness, model and feature-store answers;
- :mod:`app.schemas.errors`: the error bodies and :func:`~app.schemas.errors.field_errors`;
- :mod:`app.schemas.answers`: a prediction as the JSON answer and as CSV answer cells;
- :mod:`app.schemas.csv_rows`: a CSV row as a validated transaction.

The models and error shapes are re-exported here (``from app.schemas import
TransactionIn``). The answer and CSV encodings are imported from their modules: they
take a :class:`~app.services.predictor.Prediction`, and importing the models alone
should not load the scorer.
"""

from app.schemas.errors import ErrorOut, FieldError, ValidationErrorOut, field_errors
from app.schemas.status import (
    ComponentOut,
    FeatureStatusOut,
    FeatureStoreStatus,
    HealthOut,
    LoadRecordOut,
    LogComponentOut,
    ModelOut,
    ReadyOut,
    ReadyStatus,
    ReloadOut,
    ViewLoadOut,
)
from app.schemas.transactions import (
    EARLIEST,
    MAX_CLOCK_SKEW,
    BatchIn,
    BatchOut,
    Channel,
    EntryMode,
    FeedbackIn,
    FeedbackOut,
    FeedbackSource,
    Identifier,
    MerchantCategory,
    ReasonOut,
    ScoreOut,
    TransactionIn,
)

__all__ = [
    "EARLIEST",
    "MAX_CLOCK_SKEW",
    "BatchIn",
    "BatchOut",
    "Channel",
    "ComponentOut",
    "EntryMode",
    "ErrorOut",
    "FeatureStatusOut",
    "FeatureStoreStatus",
    "FeedbackIn",
    "FeedbackOut",
    "FeedbackSource",
    "FieldError",
    "HealthOut",
    "Identifier",
    "LoadRecordOut",
    "LogComponentOut",
    "MerchantCategory",
    "ModelOut",
    "ReadyOut",
    "ReadyStatus",
    "ReasonOut",
    "ReloadOut",
    "ScoreOut",
    "TransactionIn",
    "ValidationErrorOut",
    "ViewLoadOut",
    "field_errors",
]
