"""The fields a rule may read, and their kinds (numeric or text)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fraud_model.decisions import DECISIONS, RISK_LEVELS

FieldKind = Literal["numeric", "text"]

REQUEST_NUMERIC: tuple[str, ...] = (
    "request.amount",
    "request.distance_from_home_km",
    "request.is_foreign",
)
REQUEST_TEXT: tuple[str, ...] = (
    "request.customer_id",
    "request.terminal_id",
    "request.merchant_category",
    "request.channel",
    "request.entry_mode",
)
MODEL_NUMERIC: tuple[str, ...] = ("model.score", "model.ae_score", "model.clf_score")
MODEL_TEXT: tuple[str, ...] = ("model.risk_level", "model.decision")
_FEATURE_NAME = re.compile(r"^feature\.[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class FieldCatalogue:
    """Known fields by kind. ``open_features`` accepts any ``feature.<name>`` (offline checks
    without the FeatureService's list)."""

    numeric: frozenset[str]
    text: frozenset[str]
    open_features: bool = False
    # The values a text field can take, where they are known: a rule comparing it with
    # another value could never match (a typo), so it is refused.
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def for_features(
        cls, names: Sequence[str] | None, values: Mapping[str, Iterable[str]] | None = None
    ) -> FieldCatalogue:
        """Request and model fields plus ``feature.<name>`` for every FeatureService feature;
        ``None`` accepts any feature name. ``values``: the known values of request text
        fields (the service passes its vocabularies); the model's are always known."""
        features = {f"feature.{name}" for name in names or ()}
        known = {
            "model.risk_level": frozenset(RISK_LEVELS),
            "model.decision": frozenset(DECISIONS.values()),
            **{name: frozenset(v) for name, v in (values or {}).items()},
        }
        return cls(
            numeric=frozenset({*REQUEST_NUMERIC, *MODEL_NUMERIC, *features}),
            text=frozenset({*REQUEST_TEXT, *MODEL_TEXT}),
            open_features=names is None,
            values=known,
        )

    def unknown_value(self, field: str, value: str) -> str | None:
        """Why ``value`` can never be ``field``'s (None when it can, or when unknown)."""
        known = self.values.get(field)
        if known is None or value in known:
            return None
        by_case = {k.casefold(): k for k in known}
        close = difflib.get_close_matches(value.casefold(), sorted(by_case), n=1, cutoff=0.6)
        hint = f" (did you mean {by_case[close[0]]!r}?)" if close else ""
        return f"{value!r} is never a value of {field}{hint}; it takes {', '.join(sorted(known))}"

    def kind(self, field: str) -> FieldKind | None:
        """The field's kind, or None when it is not in the catalogue."""
        if field in self.numeric:
            return "numeric"
        if field in self.text:
            return "text"
        if self.open_features and _FEATURE_NAME.match(field):
            return "numeric"
        return None

    def close_matches(self, field: str) -> list[str]:
        """Up to three known fields spelled like ``field``."""
        known = sorted(self.numeric | self.text)
        tail = field.split(".", 1)[-1]
        same_name = [k for k in known if k.split(".", 1)[1] == tail]  # under the wrong prefix
        return same_name[:3] or difflib.get_close_matches(field, known, n=3, cutoff=0.75)
