"""One axis at a time: each scheme's time and energy to the target relative to FedAvg-all, over repeated seeds.

An axis rewrites the scenario at each of its values (``AXES``); every point runs the schemes through the same
comparison as ``testbed compare`` (testbed/experiment/compare.py), once per seed, and fedavg_all always runs:
it is the reference. Per point and scheme the ratios (time to target / fedavg_all's, energy to target /
fedavg_all's, same seed) are summarised over the seeds that reached the target by both (mean, min, max: the
spread), with how many did; a scheme the point's regime does not allow is listed with the reason.

Axes:
- ``weak_fraction``: the share of weak UEs (weak UEs copy the scenario's weak UEs' boards, links and data
  shares in turn, strong UEs its strong ones);
- ``snr_spread_db``: the UEs' SNRs spread evenly over this many dB around their mean, in the scenario's order
  of SNR (0: every UE at the mean);
- ``num_ues``: the number of UEs, the scenario's weak fraction kept; the TDMA cycle grows with the UEs so each
  slot keeps its length (the data set does not grow: more UEs hold fewer samples each);
- ``privacy``: a setting of testbed/experiment/privacy.py;
- ``samples_per_round``: every UE's new samples per round (streaming data; 0: all from round 0).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from testbed.errors import ConfigError
from testbed.experiment.compare import run_comparison
from testbed.experiment.scenario import Scenario, UeSection, with_regime

REFERENCE = "fedavg_all"
#: What ``testbed sweep --values`` defaults to per axis.
DEFAULT_VALUES: dict[str, tuple[Any, ...]] = {
    "weak_fraction": (0.2, 0.4, 0.6, 0.8),
    "snr_spread_db": (0.0, 10.0, 20.0),
    "num_ues": (10, 50, 200, 1000),
    "privacy": ("none", "weak", "all"),
    "samples_per_round": (0, 5, 20),
}


def _checked(scenario: Scenario, what: str) -> Scenario:
    """``scenario`` validated as a loaded one is (a rewritten struct skips msgspec's checks)."""
    try:
        out = msgspec.convert(msgspec.to_builtins(scenario), Scenario)
        out.airtime()
    except (msgspec.ValidationError, ConfigError) as exc:
        raise ConfigError(f"sweep {what}: {exc}") from exc
    return out


def _population(scenario: Scenario, num_ues: int, num_weak: int) -> list[UeSection]:
    weak = [u for u in scenario.ues if u.weak]
    strong = [u for u in scenario.ues if not u.weak]
    if (num_weak and not weak) or (num_weak < num_ues and not strong):
        raise ConfigError("the scenario needs weak and strong [[ues]] to copy for this point of the sweep")
    out = []
    for i in range(num_ues):
        template = weak[i % len(weak)] if i < num_weak else strong[(i - num_weak) % len(strong)]
        out.append(msgspec.structs.replace(template, name=f"ue{i}"))
    return out


def weak_fraction(scenario: Scenario, fraction: float) -> Scenario:
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"weak_fraction={fraction!r} must be in [0, 1]")
    n = len(scenario.ues)
    ues = _population(scenario, n, round(fraction * n))
    return _checked(msgspec.structs.replace(scenario, ues=ues), f"weak_fraction={fraction}")


def snr_spread_db(scenario: Scenario, spread_db: float) -> Scenario:
    if not spread_db >= 0.0:
        raise ConfigError(f"snr_spread_db={spread_db!r} must be >= 0")
    n = len(scenario.ues)
    mean = statistics.fmean(u.snr_db for u in scenario.ues)
    order = sorted(range(n), key=lambda i: scenario.ues[i].snr_db)
    snr = [0.0] * n
    for rank, i in enumerate(order):
        snr[i] = mean + (spread_db * (rank / (n - 1) - 0.5) if n > 1 else 0.0)
    ues = [msgspec.structs.replace(u, snr_db=s) for u, s in zip(scenario.ues, snr, strict=True)]
    return _checked(msgspec.structs.replace(scenario, ues=ues), f"snr_spread_db={spread_db}")


def num_ues(scenario: Scenario, count: int) -> Scenario:
    if count < 1:
        raise ConfigError(f"num_ues={count!r} must be >= 1")
    n = len(scenario.ues)
    weak = round(count * sum(u.weak for u in scenario.ues) / n)
    ues = _population(scenario, count, weak)
    cycle = scenario.link.tdma_cycle_samples * (count + 1) // (n + 1)  # each slot keeps its length
    link = msgspec.structs.replace(scenario.link, tdma_cycle_samples=max(cycle, 1))
    return _checked(msgspec.structs.replace(scenario, ues=ues, link=link), f"num_ues={count}")


def privacy(scenario: Scenario, setting: str) -> Scenario:
    return with_regime(scenario, setting)


def samples_per_round(scenario: Scenario, rate: int) -> Scenario:
    return with_regime(scenario, samples_per_round=rate)


#: Axis name -> (how a value is read from the command line, how it rewrites the scenario).
AXES: dict[str, tuple[Callable[[str], Any], Callable[[Scenario, Any], Scenario]]] = {
    "weak_fraction": (float, weak_fraction),
    "snr_spread_db": (float, snr_spread_db),
    "num_ues": (int, num_ues),
    "privacy": (str, privacy),
    "samples_per_round": (int, samples_per_round),
}


def _spread(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values), "n": len(values)}


def _ratios(runs: Sequence[dict[str, Any]], name: str, key: str) -> list[float]:
    """Per seed, ``key`` of ``name`` over fedavg_all's; seeds where either missed the target are left out."""
    out = []
    for r in runs:
        mine, ref = r["schemes"][name][key], r["schemes"][REFERENCE][key]
        if mine is not None and ref:
            out.append(mine / ref)
    return out


def summarise(value: Any, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One point of the sweep from its per-seed comparisons (run_comparison's results)."""
    names = list(runs[0]["schemes"])
    schemes = {}
    for name in names:
        schemes[name] = {
            "time_ratio": _spread(_ratios(runs, name, "time_to_target_s")),
            "energy_ratio": _spread(_ratios(runs, name, "energy_to_target_j")),
            "final_accuracy": _spread([r["schemes"][name]["final_accuracy"] for r in runs]),
            "time_to_target_s": [r["schemes"][name]["time_to_target_s"] for r in runs],
            "energy_to_target_j": [r["schemes"][name]["energy_to_target_j"] for r in runs],
        }
    return {"value": value, "schemes": schemes, "not_allowed": runs[0]["not_allowed"]}


def run_sweep(
    scenario: Scenario,
    axis: str,
    values: Sequence[Any],
    seeds: Sequence[int],
    schemes: Sequence[str],
    wrap: Callable[[range, str], Iterable[int]] = lambda r, _desc: r,
    jobs: int = 1,
    threads: int = 1,
) -> dict[str, Any]:
    """Every scheme (and fedavg_all) at every value of ``axis`` for every seed; one summary per point.
    ``wrap(range, description)`` decorates the loop over (value, seed) pairs (a progress bar on stderr)."""
    if axis not in AXES:
        raise ConfigError(f"unknown sweep axis {axis!r}; choose one of {', '.join(AXES)}")
    if not values or not seeds:
        raise ConfigError("a sweep needs at least one value and one seed")
    names = [REFERENCE, *(n for n in dict.fromkeys(schemes) if n != REFERENCE)]
    rewrite = AXES[axis][1]
    pairs = [(v, s) for v in values for s in seeds]
    results: dict[Any, list[dict[str, Any]]] = {v: [] for v in values}
    for i in wrap(range(len(pairs)), f"sweep {axis}"):
        value, seed = pairs[i]
        point = rewrite(scenario, value)
        point = msgspec.structs.replace(point, training=msgspec.structs.replace(point.training, seed=seed))
        result = run_comparison(point, names, None, jobs=jobs, threads=threads)
        results[value].append({k: v for k, v in result.items() if k != "histories"})
    return {
        "scenario": scenario.name,
        "axis": axis,
        "values": list(values),
        "seeds": list(seeds),
        "reference": REFERENCE,
        "target_accuracy": scenario.run.target_accuracy,
        "rounds": scenario.run.rounds,
        "points": [summarise(v, results[v]) for v in values],
    }


def plot(result: dict[str, Any], path: Path) -> Path:
    """Time and energy to target relative to fedavg_all against the axis, one panel each: a marker per scheme
    at the seeds' mean, a bar over their spread (min to max), the reference line at 1 labelled."""
    from testbed.experiment.report.figures import sweep_figure

    sweep_figure(result, path)
    return path
