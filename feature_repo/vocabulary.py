"""Category vocabularies shared by the simulator and the request-time features.

Codes are positions in these tuples; a value outside a vocabulary gets ``len(vocabulary)``.
Appending is safe for trained models only with a new FeatureService version.
"""

CHANNELS: tuple[str, ...] = ("in_person", "online")
ENTRY_MODES: tuple[str, ...] = ("chip", "pin", "contactless", "swipe", "manual")
MERCHANT_CATEGORIES: tuple[str, ...] = (
    "grocery",
    "restaurant",
    "fuel",
    "pharmacy",
    "clothing",
    "entertainment",
    "electronics",
    "jewelry",
    "travel",
    "online_retail",
    "digital_goods",
)
UNKNOWN = "unknown"
