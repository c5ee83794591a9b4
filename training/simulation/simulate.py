"""Deterministic card-transaction simulator with documented fraud scenarios.

Real card data cannot ship with the project, so this builds a synthetic population of
customers and terminals and a stream of transactions over two periods: ``v0`` (the
training reference) and ``v1`` (later, with concept drift). Everything is vectorised
NumPy driven by one seeded generator, so the same configuration gives the same rows.
See ``docs/data.md`` for the scenarios and the drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from tqdm import tqdm

from feature_repo.vocabulary import ENTRY_MODES, MERCHANT_CATEGORIES

SECONDS_PER_DAY = 86_400
AGE_BANDS = ("18-25", "26-40", "41-60", "61+")
GENDERS = ("female", "male", "nonbinary")
SCENARIOS = (
    "none",
    "large_amount",
    "compromised_terminal",
    "compromised_card",
    "account_takeover",
    "card_testing",
)
V0_SCENARIOS = SCENARIOS[1:5]
DRIFTED_FEATURES = ("amount", "is_online")  # what v1 shifts on purpose (see docs/data.md)

# Amount multiplier and how often each category appears among physical and online merchants.
_CATEGORY_AMOUNT = dict(
    zip(MERCHANT_CATEGORIES, (1.0, 0.8, 1.0, 0.6, 1.5, 0.9, 3.0, 4.0, 4.0, 1.3, 0.4), strict=True)
)
_PHYSICAL_MIX = {
    "grocery": 0.25,
    "restaurant": 0.20,
    "fuel": 0.12,
    "pharmacy": 0.08,
    "clothing": 0.10,
    "entertainment": 0.10,
    "electronics": 0.06,
    "jewelry": 0.04,
    "travel": 0.05,
}
_ONLINE_MIX = {"online_retail": 0.50, "digital_goods": 0.25, "travel": 0.15, "electronics": 0.10}
_CARD_PRESENT_MODES = {"chip": 0.45, "contactless": 0.35, "pin": 0.12, "swipe": 0.08}


@dataclass(frozen=True)
class DriftConfig:
    """How the later period ``v1`` differs from ``v0``."""

    amount_scale: float = 1.25
    online_share: float = 0.40
    card_testing_share: float = 0.25


@dataclass(frozen=True)
class SimulationConfig:
    """Simulator settings; ``params.yaml`` section ``simulate``."""

    seed: int = 42
    start_date: str = "2025-01-06"
    v0_days: int = 100
    v1_days: int = 50
    n_customers: int = 2000
    n_terminals: int = 4000
    area_km: float = 200.0
    nearby_terminals: int = 25
    online_merchant_share: float = 0.10
    online_share: float = 0.22
    foreign_share: float = 0.015
    fraud_rate: float = 0.015
    scenario_shares: dict[str, float] = field(
        default_factory=lambda: {
            "large_amount": 0.15,
            "compromised_terminal": 0.30,
            "compromised_card": 0.35,
            "account_takeover": 0.20,
        }
    )
    compromised_terminal_days: int = 28
    compromised_card_days: int = 14
    drift: DriftConfig = field(default_factory=DriftConfig)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SimulationConfig:
        values = dict(params)
        values["drift"] = DriftConfig(**values.get("drift", {}))
        return cls(**values)

    def __post_init__(self) -> None:
        if set(self.scenario_shares) != set(V0_SCENARIOS):
            raise ValueError(f"scenario_shares needs exactly {V0_SCENARIOS}")
        if not np.isclose(sum(self.scenario_shares.values()), 1.0):
            raise ValueError("scenario_shares must sum to 1")
        if not 0 < self.fraud_rate < 0.2:
            raise ValueError("fraud_rate must be in (0, 0.2)")
        if self.v0_days < 1 or self.v1_days < 0:
            raise ValueError("v0_days must be >= 1 and v1_days >= 0")

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.start_date, tz="UTC")


@dataclass
class SimulatedData:
    """The population and the transaction stream (both periods, sorted by time)."""

    customers: pd.DataFrame
    terminals: pd.DataFrame
    transactions: pd.DataFrame


@dataclass
class _Population:
    home: np.ndarray  # (C, 2) km
    mean_amount: np.ndarray
    amount_sigma: np.ndarray
    tx_per_day: np.ndarray
    usual_hour: np.ndarray
    online_share: np.ndarray
    terminal_xy: np.ndarray  # (T, 2) km
    terminal_category: np.ndarray  # index into MERCHANT_CATEGORIES
    physical: np.ndarray  # terminal indices
    online: np.ndarray
    online_weights: np.ndarray
    nearest: np.ndarray  # (C, k) physical terminal indices, nearest first


@dataclass
class _Columns:
    """Transaction columns as NumPy arrays while the stream is being built."""

    seconds: np.ndarray  # since start_date
    customer: np.ndarray
    terminal: np.ndarray
    amount: np.ndarray
    online: np.ndarray
    entry: np.ndarray  # index into ENTRY_MODES
    foreign: np.ndarray
    distance: np.ndarray
    scenario: np.ndarray  # index into SCENARIOS; 0 = legitimate

    @classmethod
    def concat(cls, parts: list[_Columns]) -> _Columns:
        return cls(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in cls.__dataclass_fields__
            }
        )

    def take(self, order: np.ndarray) -> _Columns:
        return _Columns(**{name: getattr(self, name)[order] for name in self.__dataclass_fields__})


def simulate(config: SimulationConfig, progress: bool = True) -> SimulatedData:
    """Simulate customers, terminals and both periods of transactions."""
    rng = np.random.default_rng(config.seed)
    steps = ["population", "legitimate traffic", "fraud v0", "fraud v1", "assemble"]
    with tqdm(total=len(steps), desc="simulate", unit="step", disable=not progress) as bar:
        bar.set_postfix_str(steps[0])
        customers, terminals, pop = _make_population(config, rng)
        bar.update()
        bar.set_postfix_str(steps[1])
        cols = _legitimate_traffic(config, pop, rng)
        bar.update()
        injected = []
        for name, first_day, days in (
            ("v0", 0, config.v0_days),
            ("v1", config.v0_days, config.v1_days),
        ):
            bar.set_postfix_str(f"fraud {name}")
            if days > 0:
                injected.append(_add_fraud(config, pop, cols, rng, name, first_day, days))
            bar.update()
        bar.set_postfix_str(steps[4])
        cols = _Columns.concat([cols, *injected])
        cols = cols.take(np.argsort(cols.seconds, kind="stable"))
        transactions = _to_frame(config, cols, customers, terminals)
        bar.update()
    return SimulatedData(customers, terminals, transactions)


def _make_population(
    config: SimulationConfig, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, _Population]:
    n_c, n_t, area = config.n_customers, config.n_terminals, config.area_km
    home = rng.uniform(0, area, size=(n_c, 2))
    age = rng.choice(len(AGE_BANDS), size=n_c, p=[0.15, 0.35, 0.32, 0.18])
    gender = rng.choice(len(GENDERS), size=n_c, p=[0.49, 0.49, 0.02])
    # Spending and habits vary with age, as in real portfolios; fraud does not depend on it.
    mean_amount = rng.uniform(10, 80, n_c) * np.array([0.7, 1.0, 1.2, 0.9])[age]
    amount_sigma = rng.uniform(0.3, 0.8, n_c)
    tx_per_day = rng.uniform(0.5, 3.5, n_c)
    usual_hour = np.clip(rng.normal(np.array([15.0, 13.5, 12.5, 11.0])[age], 2.0), 7, 21)
    online_mean = np.clip(config.online_share * np.array([1.4, 1.1, 0.8, 0.6])[age], 0.01, 0.95)
    online_share = rng.beta(4 * online_mean, 4 * (1 - online_mean))
    region = np.where(home[:, 1] >= area / 2, "north", "south").astype(object) + np.where(
        home[:, 0] >= area / 2, "-east", "-west"
    ).astype(object)

    terminal_xy = rng.uniform(0, area, size=(n_t, 2))
    is_online = rng.random(n_t) < config.online_merchant_share
    is_online[0] = True  # at least one of each kind, even for tiny populations
    is_online[-1] = False
    physical, online = np.flatnonzero(~is_online), np.flatnonzero(is_online)
    category = np.empty(n_t, dtype=np.int64)
    for idx, mix in ((physical, _PHYSICAL_MIX), (online, _ONLINE_MIX)):
        codes = [MERCHANT_CATEGORIES.index(c) for c in mix]
        category[idx] = rng.choice(codes, size=idx.size, p=list(mix.values()))
    k = min(config.nearby_terminals, physical.size)
    _, nearest = cKDTree(terminal_xy[physical]).query(home, k=k)
    nearest = physical[np.asarray(nearest).reshape(n_c, k)]
    popularity = 1.0 / np.arange(1, online.size + 1) ** 0.8  # a few big online merchants
    online_weights = popularity / popularity.sum()

    customers = pd.DataFrame(
        {
            "customer_id": _ids("C", n_c, 6),
            "home_x_km": home[:, 0].round(3),
            "home_y_km": home[:, 1].round(3),
            "mean_amount": mean_amount.round(2),
            "tx_per_day": tx_per_day.round(3),
            "usual_hour": usual_hour.round(2),
            "online_share": online_share.round(3),
            "age_band": np.array(AGE_BANDS, dtype=object)[age],
            "gender": np.array(GENDERS, dtype=object)[gender],
            "region": region,
        }
    )
    terminals = pd.DataFrame(
        {
            "terminal_id": _ids("T", n_t, 6),
            "x_km": terminal_xy[:, 0].round(3),
            "y_km": terminal_xy[:, 1].round(3),
            "merchant_category": np.array(MERCHANT_CATEGORIES, dtype=object)[category],
            "is_online_merchant": is_online,
        }
    )
    pop = _Population(
        home,
        mean_amount,
        amount_sigma,
        tx_per_day,
        usual_hour,
        online_share,
        terminal_xy,
        category,
        physical,
        online,
        online_weights,
        nearest,
    )
    return customers, terminals, pop


def _legitimate_traffic(
    config: SimulationConfig, pop: _Population, rng: np.random.Generator
) -> _Columns:
    n_c, days = pop.home.shape[0], config.v0_days + config.v1_days
    counts = rng.poisson(pop.tx_per_day[:, None], size=(n_c, days)).ravel()
    customer = np.repeat(np.repeat(np.arange(n_c), days), counts)
    day = np.repeat(np.tile(np.arange(days), n_c), counts)
    n = customer.size
    in_v1 = day >= config.v0_days

    # Most purchases cluster around the customer's usual hour, some anywhere in the day.
    around_usual = rng.normal(pop.usual_hour[customer] * 3600, 3.0 * 3600)
    anytime = rng.uniform(6 * 3600, 23 * 3600, n)
    second_of_day = np.where(rng.random(n) < 0.88, around_usual, anytime) % SECONDS_PER_DAY
    seconds = day * SECONDS_PER_DAY + second_of_day.astype(np.int64)

    online_scale = np.where(in_v1, config.drift.online_share / config.online_share, 1.0)
    online = rng.random(n) < np.clip(pop.online_share[customer] * online_scale, 0, 0.95)
    k = pop.nearest.shape[1]
    favourite = np.minimum((k * rng.random(n) ** 2).astype(np.int64), k - 1)  # nearest favoured
    terminal = pop.nearest[customer, favourite]
    n_online = int(online.sum())
    terminal[online] = rng.choice(pop.online, size=n_online, p=pop.online_weights)

    category_scale = np.array([_CATEGORY_AMOUNT[c] for c in MERCHANT_CATEGORIES])
    amount = np.exp(
        np.log(pop.mean_amount[customer] * category_scale[pop.terminal_category[terminal]])
        + pop.amount_sigma[customer] * rng.standard_normal(n)
    )
    amount = np.where(in_v1, amount * config.drift.amount_scale, amount)

    entry = rng.choice(
        [ENTRY_MODES.index(m) for m in _CARD_PRESENT_MODES],
        size=n,
        p=list(_CARD_PRESENT_MODES.values()),
    )
    entry[online] = ENTRY_MODES.index("manual")
    distance = np.linalg.norm(pop.terminal_xy[terminal] - pop.home[customer], axis=1)
    distance[online] = np.abs(rng.normal(0, 3.0, n_online))  # device location, near home
    foreign = rng.random(n) < config.foreign_share
    distance[foreign] += rng.uniform(300, 3000, int(foreign.sum()))
    return _Columns(
        seconds=seconds,
        customer=customer,
        terminal=terminal,
        amount=_round_amount(amount),
        online=online,
        entry=entry,
        foreign=foreign,
        distance=distance,
        scenario=np.zeros(n, dtype=np.int64),
    )


def _add_fraud(
    config: SimulationConfig,
    pop: _Population,
    cols: _Columns,
    rng: np.random.Generator,
    period: str,
    first_day: int,
    days: int,
) -> _Columns:
    """Turn legitimate rows of one period into fraud and inject fraud bursts.

    The number of fraudulent rows per scenario is solved up front so that the period's
    fraud rate equals ``config.fraud_rate`` (up to rounding), whatever the scenarios draw.
    """
    lo, hi = first_day * SECONDS_PER_DAY, (first_day + days) * SECONDS_PER_DAY
    in_period = (cols.seconds >= lo) & (cols.seconds < hi)
    shares = dict(config.scenario_shares)
    if period == "v1":
        shares = {s: v * (1 - config.drift.card_testing_share) for s, v in shares.items()}
        shares["card_testing"] = config.drift.card_testing_share
    injected_share = shares["account_takeover"] + shares.get("card_testing", 0.0)
    rate = config.fraud_rate
    total_fraud = rate * int(in_period.sum()) / (1 - rate * injected_share)
    target = {s: int(round(total_fraud * v)) for s, v in shares.items()}

    _compromised_terminals(config, cols, rng, target["compromised_terminal"], lo, hi, pop)
    _compromised_cards(config, cols, rng, target["compromised_card"], lo, hi, pop)
    legit = np.flatnonzero(in_period & (cols.scenario == 0))
    chosen = rng.choice(legit, size=min(target["large_amount"], legit.size), replace=False)
    cols.amount[chosen] = _round_amount(cols.amount[chosen] * rng.uniform(4, 12, chosen.size))
    cols.scenario[chosen] = SCENARIOS.index("large_amount")

    parts = [_account_takeovers(pop, rng, target["account_takeover"], lo, hi)]
    if "card_testing" in target:
        parts.append(_card_testing(pop, rng, target["card_testing"], lo, hi))
    return _Columns.concat(parts)


def _mark_windows(
    cols: _Columns,
    rng: np.random.Generator,
    key: np.ndarray,
    n_keys: int,
    window_s: int,
    target: int,
    lo: int,
    hi: int,
    fraction: float,
) -> list[np.ndarray]:
    """Pick (entity, start) events until ``target`` legitimate rows inside them are chosen."""
    order = np.lexsort((cols.seconds, key))
    key_sorted, seconds_sorted = key[order], cols.seconds[order]
    bounds = np.searchsorted(key_sorted, np.arange(n_keys + 1))
    chosen: list[np.ndarray] = []
    remaining = target
    for _ in range(100_000):
        if remaining <= 0:
            break
        entity = int(rng.integers(n_keys))
        start = int(rng.integers(lo, hi))
        a, b = bounds[entity], bounds[entity + 1]
        window = seconds_sorted[a:b]
        i, j = (
            a + np.searchsorted(window, start),
            a + np.searchsorted(window, min(start + window_s, hi)),
        )
        rows = order[i:j]
        rows = rows[cols.scenario[rows] == 0]
        rows = rows[rng.random(rows.size) < fraction][:remaining]
        if rows.size:
            cols.scenario[rows] = -1  # reserved until the caller labels them
            chosen.append(rows)
            remaining -= rows.size
    return chosen


def _compromised_terminals(
    config: SimulationConfig,
    cols: _Columns,
    rng: np.random.Generator,
    target: int,
    lo: int,
    hi: int,
    pop: _Population,
) -> None:
    """Skimmed terminals: every transaction there is fraudulent for a few weeks."""
    window = config.compromised_terminal_days * SECONDS_PER_DAY
    n_terminals = pop.terminal_xy.shape[0]
    for rows in _mark_windows(cols, rng, cols.terminal, n_terminals, window, target, lo, hi, 1.0):
        cols.scenario[rows] = SCENARIOS.index("compromised_terminal")


def _compromised_cards(
    config: SimulationConfig,
    cols: _Columns,
    rng: np.random.Generator,
    target: int,
    lo: int,
    hi: int,
    pop: _Population,
) -> None:
    """Stolen card details: a third of the card's next two weeks become inflated online buys."""
    window = config.compromised_card_days * SECONDS_PER_DAY
    n_customers = pop.home.shape[0]
    marked = _mark_windows(cols, rng, cols.customer, n_customers, window, target, lo, hi, 1 / 3)
    rows = np.concatenate(marked) if marked else np.array([], dtype=np.int64)
    cols.scenario[rows] = SCENARIOS.index("compromised_card")
    cols.online[rows] = True
    cols.entry[rows] = ENTRY_MODES.index("manual")
    cols.terminal[rows] = rng.choice(pop.online, size=rows.size)
    cols.amount[rows] = _round_amount(cols.amount[rows] * rng.uniform(2, 5, rows.size))
    cols.distance[rows] = rng.uniform(50, 2500, rows.size)
    cols.foreign[rows] = rng.random(rows.size) < 0.5


def _bursts(
    rng: np.random.Generator, target: int, sizes: tuple[int, int], gap_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Burst id and offset (seconds from the burst start) for ``target`` injected rows."""
    burst_sizes: list[int] = []
    while sum(burst_sizes) < target:
        burst_sizes.append(int(rng.integers(*sizes)))
    if burst_sizes:
        burst_sizes[-1] -= sum(burst_sizes) - target
    size = np.array(burst_sizes, dtype=np.int64)
    burst = np.repeat(np.arange(size.size), size)
    gaps = rng.exponential(gap_s, burst.size)
    starts = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[starts] - gaps[starts], size)
    return burst, offset


def _account_takeovers(
    pop: _Population, rng: np.random.Generator, target: int, lo: int, hi: int
) -> _Columns:
    """Taken-over accounts: short bursts far from home at the customer's unusual hours."""
    burst, offset = _bursts(rng, target, (3, 9), gap_s=240.0)
    n_bursts = int(burst.max()) + 1 if burst.size else 0
    customer = rng.integers(pop.home.shape[0], size=n_bursts)
    hour = (pop.usual_hour[customer] + 12 + rng.normal(0, 2, n_bursts)) % 24
    day = rng.integers(lo // SECONDS_PER_DAY, hi // SECONDS_PER_DAY, n_bursts)
    start = day * SECONDS_PER_DAY + (hour * 3600).astype(np.int64)
    seconds = np.minimum(start[burst] + offset.astype(np.int64), hi - 1)
    n = burst.size
    online = rng.random(n) < 0.7
    terminal = rng.choice(pop.physical, size=n)
    terminal[online] = rng.choice(pop.online, size=int(online.sum()))
    entry = np.where(rng.random(n) < 0.6, ENTRY_MODES.index("swipe"), ENTRY_MODES.index("chip"))
    entry[online] = ENTRY_MODES.index("manual")
    amount = pop.mean_amount[customer[burst]] * rng.uniform(1.5, 6, n)
    return _Columns(
        seconds=seconds,
        customer=customer[burst],
        terminal=terminal,
        amount=_round_amount(amount),
        online=online,
        entry=entry,
        foreign=rng.random(n) < 0.6,
        distance=rng.uniform(300, 3000, n),
        scenario=np.full(n, SCENARIOS.index("account_takeover")),
    )


def _card_testing(
    pop: _Population, rng: np.random.Generator, target: int, lo: int, hi: int
) -> _Columns:
    """v1's new pattern: many tiny online charges at one merchant to test stolen cards."""
    burst, offset = _bursts(rng, target, (5, 16), gap_s=40.0)
    n_bursts = int(burst.max()) + 1 if burst.size else 0
    customer = rng.integers(pop.home.shape[0], size=n_bursts)
    merchant = rng.choice(pop.online, size=n_bursts)
    start = rng.integers(lo, hi, n_bursts)
    n = burst.size
    # The last charge of about half the bursts cashes out with a larger amount.
    is_last = np.append(burst[1:] != burst[:-1], True) if n else np.array([], dtype=bool)
    cash_out = is_last & (rng.random(n) < 0.5)
    amount = np.where(
        cash_out, pop.mean_amount[customer[burst]] * rng.uniform(3, 10, n), rng.uniform(0.5, 3, n)
    )
    return _Columns(
        seconds=np.minimum(start[burst] + offset.astype(np.int64), hi - 1),
        customer=customer[burst],
        terminal=merchant[burst],
        amount=_round_amount(amount),
        online=np.ones(n, dtype=bool),
        entry=np.full(n, ENTRY_MODES.index("manual")),
        foreign=rng.random(n) < 0.4,
        distance=rng.uniform(20, 3000, n),
        scenario=np.full(n, SCENARIOS.index("card_testing")),
    )


def _round_amount(amount: np.ndarray) -> np.ndarray:
    return np.clip(np.round(amount, 2), 0.5, 250_000.0)


def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=object)


def _to_frame(
    config: SimulationConfig, cols: _Columns, customers: pd.DataFrame, terminals: pd.DataFrame
) -> pd.DataFrame:
    n = cols.seconds.size
    timestamps = config.start + pd.to_timedelta(cols.seconds, unit="s")
    return pd.DataFrame(
        {
            "transaction_id": _ids("TX", n, 10),
            "timestamp": timestamps.astype("datetime64[us, UTC]"),
            "customer_id": customers["customer_id"].to_numpy()[cols.customer],
            "terminal_id": terminals["terminal_id"].to_numpy()[cols.terminal],
            "amount": cols.amount,
            "merchant_category": terminals["merchant_category"].to_numpy()[cols.terminal],
            "channel": np.where(cols.online, "online", "in_person").astype(object),
            "entry_mode": np.array(ENTRY_MODES, dtype=object)[cols.entry],
            "is_foreign": cols.foreign,
            "distance_from_home_km": np.round(cols.distance, 3),
            "is_fraud": (cols.scenario > 0).astype(np.int8),
            "fraud_scenario": np.array(SCENARIOS, dtype=object)[cols.scenario],
        }
    )
