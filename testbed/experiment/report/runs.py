"""Read a run directory into one shape, whatever wrote it: per scheme, one row per round.

Three writers, one reader (their schemas are in docs/report.md):
- ``testbed compare --out DIR``: ``DIR/summary.json`` and ``DIR/<scheme>/metrics.jsonl`` (the engine's rows);
- ``testbed train --out DIR``: ``DIR/metrics.jsonl``;
- a BS daemon's ``[bs] state_dir`` (also inside a ``testbed sim`` run directory): ``rounds.jsonl`` directly in
  ``DIR``, under ``DIR/state/`` or under ``DIR/<scheme>/[state/]``, one record per finished round.

A row (:class:`Round`) keeps what the figures need and says what was not recorded (``None``) instead of
guessing: the engine's rows carry no wall time and no SNR; the BS's records carry no per-UE airtime, and their
virtual time is the air's clock (each round from its start to its record, rounds back to back: on the hub's
unpaced air the virtual time testbed/node/jobtime.py models, on a Pluto real time). Events come from the
records (late, dropped, refused uploads, refused mode choices, failed or skipped rounds, UEs that left and
rejoined, a BS restart) and, for daemon runs, from the JSON-line logs beside them (``*.log``, ``logs/*.log``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.errors import ConfigError, StateError, TestbedError
from testbed.learning.checkpoint import read_jsonl

METHOD = "policy"  # the full method: named in the table, drawn on top of the baselines and ablations
DEFAULT_TARGET_ACCURACY = 0.9  # the scenario default ([run] target_accuracy) when the run dir does not say
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"  # the engine's (testbed/experiment/engine.py)
ROUNDS_FILE = "rounds.jsonl"  # the BS daemon's (testbed/node/bs.py)
SYMBOLS_DIR = "symbols"  # symbols/<round>_<ue>.npy: received semantic symbols (docs/report.md)
# Log events worth a line in the report: a node's life cycle and anything that went wrong. Every record at
# level warning or above is kept too (refused control messages are such warnings).
LOG_EVENTS = frozenset(
    {"ready", "run_started", "run_resumed", "ue_joined", "ue_gone", "bs_registered", "bs_gone", "skipped",
     "job_discarded", "stopped"}
)  # fmt: skip
LOG_LEVELS = frozenset({"warning", "error", "critical"})


@dataclass
class Round:
    """One round of one scheme. Cumulative figures are totals since the first round; ``None``: not recorded."""

    round: int
    accuracy: float | None
    loss: float | None
    virtual_time_s: float | None
    wall_time_s: float | None
    energy_j: float
    uplink_bits: float
    modes: dict[str, str]
    uplink_mcs: dict[str, str]
    uplink_bytes: dict[str, int] | None = None
    airtime_s: dict[str, float] | None = None
    snr_db: dict[str, dict[str, float]] = field(default_factory=dict)  # kind (uplink, ...) -> ue -> dB
    subcarrier_snr_db: dict[str, list[float]] | None = None  # ue -> dB per used subcarrier
    class_accuracy: list[float | None] | None = None  # per class, when the engine measured it
    raw_samples: int | None = None  # raw samples the BS holds so far, when the engine counted them


@dataclass
class Event:
    """Something the report lists: where it was seen (``source``), which node, what, and the round if known."""

    source: str
    node: str
    kind: str
    detail: str
    round: int | None = None
    ts: float | None = None


@dataclass
class SchemeRun:
    """The rounds of one scheme and the file they came from; ``clock``: "virtual" or "wall"."""

    name: str
    source: Path
    clock: str
    rounds: list[Round]
    records: list[dict[str, Any]]  # as read, for the events


@dataclass
class Run:
    """A whole run directory: ``kind`` "compare", "train" or "daemon"."""

    path: Path
    kind: str
    target_accuracy: float
    title: str
    schemes: dict[str, SchemeRun]
    events: list[Event]
    symbols: dict[tuple[int, str], Path]


def read_run(path: Path) -> Run:
    """Read ``path`` (see the module docstring); :class:`ConfigError` (one line) if it is no run directory,
    :class:`StateError` if a file in it is damaged."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"run directory {path} does not exist (or is not a directory)")
    summary = _summary(path)
    target = float(summary.get("target_accuracy", DEFAULT_TARGET_ACCURACY))
    daemon = _rounds_files(path)
    if daemon and daemon[0][0] is None:  # a rounds.jsonl of its own (or in state/): a daemon run, whatever else
        kind, schemes = "daemon", _daemon_runs(daemon, summary)
    elif (path / SUMMARY_FILE).exists() and any(path.glob(f"*/{METRICS_FILE}")):
        kind = "compare"
        schemes = {d.parent.name: _engine_run(d) for d in sorted(path.glob(f"*/{METRICS_FILE}"))}
        order = list(summary.get("schemes", {}))  # the comparison's own order, then any others
        schemes = {n: schemes[n] for n in sorted(schemes, key=lambda n: (order + [n]).index(n))}
    elif (path / METRICS_FILE).exists():
        kind = "train"
        run = _engine_run(path / METRICS_FILE)
        schemes = {run.name: run}
    elif daemon:  # one per scheme: <scheme>/[state/]rounds.jsonl
        kind, schemes = "daemon", _daemon_runs(daemon, summary)
    else:
        raise ConfigError(
            f"{path} is not a run directory: no {ROUNDS_FILE} in it or in state/ (a BS state_dir or a testbed sim "
            f"run), no {SUMMARY_FILE} with <scheme>/{METRICS_FILE} (testbed compare --out), no {METRICS_FILE} "
            f"(testbed train --out), no <scheme>/[state/]{ROUNDS_FILE}; point at one of those"
        )
    for run in schemes.values():
        if not run.rounds:
            raise ConfigError(f"{run.source} holds no finished round yet; report a run that has at least one")
    events = []
    for run in schemes.values():
        with _schema(run.source):
            events += _record_events(run, path)
    if kind == "daemon":
        events += _log_events(path)
    title = str(summary.get("scenario", path.name))
    return Run(path, kind, target, title, schemes, events, _symbols(path, 1 if kind == "daemon" else 0))


def _summary(path: Path) -> dict[str, Any]:
    f = path / SUMMARY_FILE
    if not f.exists():
        return {}
    try:
        data = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise StateError(f"cannot read {f}: {exc}; rerun the command that wrote it") from exc
    if not isinstance(data, dict):
        raise StateError(f"{f} is not a JSON object; rerun the command that wrote it")
    return data


def _daemon_runs(found: list[tuple[str | None, Path]], summary: dict[str, Any]) -> dict[str, SchemeRun]:
    """The BS runs found; the only one is named by summary.json's ``scheme`` (default "bs")."""
    default = str(summary.get("scheme", "bs"))
    return {name or default: _daemon_run(name or default, f) for name, f in found}


def _rounds_files(path: Path) -> list[tuple[str | None, Path]]:
    """(scheme name or None for the run's only one, rounds.jsonl) in the places a daemon run keeps them."""
    for f in (path / ROUNDS_FILE, path / "state" / ROUNDS_FILE):
        if f.exists():
            return [(None, f)]
    found = {}
    for pattern in (f"*/{ROUNDS_FILE}", f"*/state/{ROUNDS_FILE}"):
        for f in sorted(path.glob(pattern)):
            scheme = f.relative_to(path).parts[0]
            found.setdefault(scheme, f)
    return sorted(found.items())


def _field(record: dict[str, Any], name: str, source: Path, kind: type | tuple[type, ...]) -> Any:
    value = record.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise StateError(
            f"{source} round {record.get('round')!r}: field {name!r} is {value!r}, expected "
            f"{getattr(kind, '__name__', kind)}; this file does not follow the documented schema (docs/report.md)"
        )
    return value


def _engine_run(source: Path) -> SchemeRun:
    """An engine log (compare's or train's): its totals are already cumulative, its clock virtual."""
    records = read_jsonl(source)
    with _schema(source):
        rows = [
            Round(
                round=_field(r, "round", source, int),
                accuracy=r.get("accuracy"),
                loss=r.get("loss"),
                virtual_time_s=_field(r, "virtual_time_s", source, (int, float)),
                wall_time_s=r.get("wall_time_s"),
                energy_j=_field(r, "energy_j", source, (int, float)),
                uplink_bits=_field(r, "uplink_bits", source, (int, float)),
                modes=dict(r.get("modes") or {}),
                uplink_mcs=dict(r.get("uplink_mcs") or {}),
                airtime_s=r.get("uplink_airtime_s"),
                subcarrier_snr_db=r.get("subcarrier_snr_db"),
                class_accuracy=r.get("class_accuracy"),
                raw_samples=r.get("raw_samples"),
            )
            for r in records
        ]
    name = str(records[-1].get("scheme", source.parent.name)) if records else source.parent.name
    return SchemeRun(name, source, "virtual", rows, records)


def _daemon_run(name: str, source: Path) -> SchemeRun:
    """A BS's rounds.jsonl: per-round figures summed here; wall time from the rounds' wall-clock starts."""
    records = read_jsonl(source)
    rows: list[Round] = []
    with _schema(source):
        for r in records:
            before = rows[-1] if rows else None
            rows.append(_daemon_row(r, source, before, records[0].get("started_unix_s")))
    clock = "virtual" if rows and all(row.virtual_time_s is not None for row in rows) else "wall"
    return SchemeRun(name, source, clock, rows, records)


def _daemon_row(r: dict[str, Any], source: Path, before: Round | None, first_start_s: Any) -> Round:
    """One BS record as a row; ``before``: the previous row (for the running totals)."""
    learned = r.get("training") or {}
    uploads = {ue: int(u["bytes"]) for ue, u in (r.get("uploads") or {}).items()}
    energy_j = sum(float(v) for v in (r.get("ue_energy_j") or {}).values())
    wall_time_s = None
    start, duration = r.get("started_unix_s"), r.get("duration_s")
    if all(isinstance(v, (int, float)) for v in (start, duration, first_start_s)):
        wall_time_s = start - first_start_s + duration
    snr = {kind: r[f"{kind}_snr_db"] for kind in ("uplink", "uplink_effective", "downlink")
           if isinstance(r.get(f"{kind}_snr_db"), dict)}  # fmt: skip
    virtual_time_s = None  # the air's clock: the rounds back to back, as the engine's virtual time
    air = r.get("air_started_s"), r.get("air_clock_s")
    if all(isinstance(v, (int, float)) for v in air) and (before is None or before.virtual_time_s is not None):
        virtual_time_s = (before.virtual_time_s if before else 0.0) + air[1] - air[0]
    return Round(
        round=_field(r, "round", source, int) - 1,  # the BS counts rounds from 1, the engine from 0
        accuracy=learned.get("accuracy"),
        loss=learned.get("loss"),
        virtual_time_s=virtual_time_s,
        wall_time_s=wall_time_s,
        energy_j=(before.energy_j if before else 0.0) + energy_j,
        uplink_bits=(before.uplink_bits if before else 0.0) + 8.0 * sum(uploads.values()),
        modes={ue: str(m) for ue, m in (r.get("modes") or {}).items()},
        uplink_mcs=dict(r.get("uplink_mcs") or {}),
        uplink_bytes=uploads,
        airtime_s=r.get("uplink_airtime_s"),
        snr_db={k: {ue: float(v) for ue, v in d.items() if v is not None} for k, d in snr.items()},
        subcarrier_snr_db=r.get("subcarrier_snr_db"),
    )


@contextmanager
def _schema(source: Path) -> Iterator[None]:
    """A record whose fields do not have the documented shape: one line naming the file."""
    try:
        yield
    except TestbedError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(
            f"{source} does not follow the documented schema (docs/report.md): {type(exc).__name__}: {exc}"
        ) from exc


def _record_events(run: SchemeRun, root: Path) -> list[Event]:
    """Late, dropped and refused UEs, refused mode choices, rounds not complete, (re)joins and BS restarts."""
    source = str(run.source.relative_to(root))
    events: list[Event] = []
    seen: set[str] = set()
    previous: set[str] | None = None
    session = None
    for r, row in zip(run.records, run.rounds, strict=True):

        def add(kind: str, node: str, detail: str, rnd: int = row.round) -> None:
            events.append(Event(source, node, kind, detail, rnd))

        if r.get("outcome") not in (None, "complete", "partial"):  # a partial round's late UEs are listed below
            add(f"round {r['outcome']}", run.name, str(r.get("error") or r.get("trigger") or ""))
        learned = r.get("training") or {}
        for ue in r.get("late") or learned.get("late") or []:
            add("late", ue, "no upload by the deadline")
        for ue, why in {**(r.get("refused") or {}), **(learned.get("refused") or {})}.items():
            add("upload refused", ue, str(why))
        for ue, why in (r.get("choices_refused") or {}).items():
            add("choice refused", ue, str(why))
        for ue in r.get("dropped") or []:
            add("dropped", ue, "left during the round")
        present = set(r.get("participants") or r.get("modes") or {})
        if previous is not None:
            for ue in sorted(present - previous):
                add("rejoined" if ue in seen else "joined", ue, "in the round again" if ue in seen else "first round")
            for ue in sorted(previous - present):
                add("absent", ue, "not in this round")
        seen |= present
        previous = present
        if "bs_session" in r:
            if session is not None and r["bs_session"] != session:
                add("BS restarted", "bs", f"session {session} -> {r['bs_session']} (resumed from its state)")
            session = r["bs_session"]
    return events


def _log_events(path: Path) -> list[Event]:
    """Life-cycle events and warnings from the JSON-line logs (``*.log``, ``logs/*.log``, and per scheme
    ``<scheme>/logs/*.log``, testbed sim's layout); other lines skipped."""
    events = []
    for f in sorted([*path.glob("*.log"), *path.glob("logs/*.log"), *path.glob("*/logs/*.log")]):
        try:
            lines = f.read_text(errors="replace").splitlines()
        except OSError as exc:
            raise StateError(f"cannot read log {f}: {exc}") from exc
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a plain line (a hub's, a traceback)
            if not isinstance(rec, dict):
                continue
            name, level = rec.get("event"), rec.get("level")
            if name in LOG_EVENTS or level in LOG_LEVELS:
                extra = {k: v for k, v in rec.items() if k not in ("ts", "level", "node", "logger", "msg", "event")}
                detail = str(rec.get("msg", "")) + (f" {json.dumps(extra, default=str)}" if extra else "")
                number = rec.get("round")  # as the BS counts (from 1; 0: before the first round)
                rnd = number - 1 if isinstance(number, int) and number >= 1 else None
                events.append(Event(str(f.relative_to(path)), str(rec.get("node", f.stem)), str(name or level),
                                    detail[:300], rnd, rec.get("ts")))  # fmt: skip
    return events


def _symbols(path: Path, offset: int) -> dict[tuple[int, str], Path]:
    """``symbols/<round>_<ue>.npy`` files by (the report's round, ue): ``<round>`` is the ``round`` field of the
    record the symbols belong to, ``offset`` what the reader subtracts from it; names that do not fit are
    ignored."""
    found = {}
    for f in sorted((path / SYMBOLS_DIR).glob("*.npy")):
        number, _, ue = f.stem.partition("_")
        if number.isdigit() and ue:
            found[(int(number) - offset, ue)] = f
    return found
