"""``write_report``: read a run directory, draw its figures, write one HTML page that opens offline.

The page embeds every figure as a PNG data URI (it needs no file beside it and fetches nothing); the same
PNGs are written beside it, in ``<page stem>-figures/``, for slides and papers. No script, no stylesheet or
font from elsewhere: a browser with no network shows all of it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from testbed.experiment.report import figures
from testbed.experiment.report.runs import METHOD, Event, Run, SchemeRun, read_run
from testbed.experiment.report.table import COLUMNS, target_table

REPORT_FILE = "report.html"
MAX_TIMELINE_STRIPS = 40  # UE strips in the timeline: the focus scheme always, others while they fit
MAX_EVENTS_SHOWN = 400  # the page lists the first ones and says how many more the JSON output counts
_CSS = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ccc; padding: 2px 6px; }
td.num { text-align: right; } .best { font-weight: bold; background: #e6f4e6; }
.method td:first-child { font-weight: bold; }
figure { margin: 1em 0; } figure img { max-width: 100%; } figcaption { font-size: 0.85em; color: #444; }
.note { color: #555; font-size: 0.9em; }
"""


def focus(run: Run) -> SchemeRun:
    """The scheme whose per-UE figures the page shows: the method if it ran, else the first."""
    return run.schemes.get(METHOD) or next(iter(run.schemes.values()))


def timeline_schemes(run: Run) -> list[SchemeRun]:
    """The focus scheme, then the others in the run's order while the timeline stays within
    ``MAX_TIMELINE_STRIPS`` UE strips."""
    main = focus(run)
    shown, strips = [main], len({ue for r in main.rounds for ue in r.modes})
    for scheme in run.schemes.values():
        more = len({ue for r in scheme.rounds for ue in r.modes})
        if scheme is not main and strips + more <= MAX_TIMELINE_STRIPS:
            shown.append(scheme)
            strips += more
    return shown


def _curves(run: Run, key: str) -> dict[str, list[tuple[float, float]]]:
    """(x, accuracy) per scheme for which every round recorded ``key`` and accuracy."""
    out = {}
    for name, scheme in run.schemes.items():
        pts = [(getattr(r, key), r.accuracy) for r in scheme.rounds if r.accuracy is not None]
        if pts and all(x is not None for x, _ in pts):
            out[name] = pts
    return out


def draw(run: Run, fig_dir: Path) -> list[tuple[Path, str]]:
    """Every figure of the page into ``fig_dir``: (path, caption) in page order."""
    title = f"{run.title} ({run.kind} run)"
    target = run.target_accuracy
    out: list[tuple[Path, str]] = []
    for key, xlabel, name, missing in (
        ("virtual_time_s", "virtual time [s]", "accuracy_vs_virtual_time",
         "virtual time not recorded: the BS's records are on the wall clock (a virtual_time_s field would carry it)"),
        ("wall_time_s", "wall time since the first round started [s]", "accuracy_vs_wall_time",
         "wall time not recorded: an in-process run on the virtual clock"),
        ("energy_j", "UE energy, cumulative [J]", "accuracy_vs_energy", "UE energy not recorded"),
    ):  # fmt: skip
        path = fig_dir / f"{name}.png"
        curves = _curves(run, key)
        if curves:
            figures.accuracy_figure(curves, xlabel, target, title, path)
            caption = f"Test accuracy against {xlabel.split(' [')[0]}, per scheme; the dotted line is the target."
        else:
            figures.placeholder(path, f"accuracy against {xlabel.split(' [')[0]}", missing)
            caption = missing[0].upper() + missing[1:] + "."
        out.append((path, caption))
    main = focus(run)
    path = fig_dir / "timeline.png"
    shown = timeline_schemes(run)
    figures.timeline_figure(shown, path)
    names = ", ".join(s.name for s in shown)
    out.append((path, f"Per-UE timeline of {names}: colour = the UE's mode in the round, height = its uplink "
                      "airtime where recorded (else its uplink bytes, else the modes alone)."))  # fmt: skip
    path = fig_dir / "channel.png"
    figures.channel_figure(main, path)
    out.append((path, f"Channel map of {main.name}: SNR per UE and round (or the MCS chosen from it), and per "
                      "subcarrier where the records carry it."))  # fmt: skip
    path = fig_dir / "constellation.png"
    figures.constellation_figure(run.symbols, path)
    out.append((path, "Received semantic symbols (I/Q), last round that has them, one panel per UE."))
    return out


def not_recorded(run: Run) -> list[str]:
    """What the figures had to leave out because the run directory does not carry it (each also said on its
    panel): "virtual time", "wall time", "per-UE airtime", "SNR", "per-subcarrier SNR", "received symbols"."""
    main = focus(run)
    checks = (
        ("virtual time", not _curves(run, "virtual_time_s")),
        ("wall time", not _curves(run, "wall_time_s")),
        ("per-UE airtime", not all(r.airtime_s for r in main.rounds)),
        ("SNR", not any(r.snr_db for r in main.rounds)),
        ("per-subcarrier SNR", not any(r.subcarrier_snr_db for r in main.rounds)),
        ("received symbols", not run.symbols),
    )
    return [what for what, missing in checks if missing]


def write_report(run_dir: Path, out: Path | None = None) -> dict[str, Any]:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``) and its PNGs beside it;
    returns what the CLI prints: the page's path, the figures, the table to the target and the events count."""
    run = read_run(Path(run_dir))
    out = (Path(out) if out is not None else run.path / REPORT_FILE).resolve()
    fig_dir = out.parent / f"{out.stem}-figures"
    drawn = draw(run, fig_dir)
    table = target_table(run)
    out.write_text(render(run, drawn, table))
    kinds: dict[str, int] = {}
    for e in run.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    return {
        "report": str(out),
        "run_dir": str(run.path),
        "kind": run.kind,
        "schemes": list(run.schemes),
        "figures": [str(p) for p, _ in drawn],
        "not_recorded": not_recorded(run),
        "table": table,
        "events": {"total": len(run.events), "by_kind": kinds},
    }


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def _cell(value: Any, key: str) -> str:
    if value is None:
        return "not reached"
    if key == "final_accuracy":
        return f"{value:.3f}"
    if key == "uplink_bits_to_target":
        return f"{value / 1e6:.2f} Mbit"
    if key == "rounds_to_target":
        return str(value)
    return f"{value:.1f}"


def _table_html(table: dict[str, Any]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in COLUMNS)
    rows = []
    for name, row in table["schemes"].items():
        cells = []
        for key, _, _ in COLUMNS:
            best = name in table["best"].get(key, [])
            mark = " &#9733;" if best else ""
            cells.append(f'<td class="num{" best" if best else ""}">{_cell(row[key], key)}{mark}</td>')
        label = html.escape(name) + (" (the method)" if name == table["method"] else "")
        rows.append(f'<tr{" class=method" if name == table["method"] else ""}><td>{label}</td>'
                    f"<td>{row['clock']}</td>{''.join(cells)}</tr>")  # fmt: skip
    return (f"<table><tr><th>scheme</th><th>clock</th>{head}</tr>{''.join(rows)}</table>"
            f'<p class="note">Target accuracy {table["target_accuracy"]:.2f}. &#9733; marks the best value per '
            "column (ties all marked); times are on each scheme's clock.</p>")  # fmt: skip


def _events_html(events: list[Event]) -> str:
    if not events:
        return '<p class="note">No events: no late, dropped or refused UE, no refused choice, no fault.</p>'
    rows = [
        f"<tr><td>{'' if e.round is None else e.round}</td><td>{html.escape(e.node)}</td>"
        f"<td>{html.escape(e.kind)}</td><td>{html.escape(e.detail)}</td><td>{html.escape(e.source)}</td></tr>"
        for e in events[:MAX_EVENTS_SHOWN]
    ]
    more = len(events) - MAX_EVENTS_SHOWN
    tail = f'<p class="note">{more} more events not listed (the --json output counts them).</p>' if more > 0 else ""
    return ("<table><tr><th>round</th><th>node</th><th>event</th><th>detail</th><th>seen in</th></tr>"
            f"{''.join(rows)}</table>{tail}")  # fmt: skip


def render(run: Run, drawn: list[tuple[Path, str]], table: dict[str, Any]) -> str:
    """The page: title, what was read, the table, the figures (embedded), the events."""
    sources = ", ".join(html.escape(str(s.source.relative_to(run.path))) for s in run.schemes.values())
    figs = "".join(f"<figure>{_img(p)}<figcaption>{html.escape(c)}</figcaption></figure>" for p, c in drawn)
    rounds = {n: len(s.rounds) for n, s in run.schemes.items()}
    missing = not_recorded(run)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>testbed report: {html.escape(run.title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>testbed report: {html.escape(run.title)}</h1>
<p class="note">{html.escape(run.kind)} run in {html.escape(str(run.path))}; read {sources};
rounds per scheme {html.escape(json.dumps(rounds))}; not recorded: {html.escape(", ".join(missing) or "nothing")}.</p>
<h2>Time, energy and uplink bits to the target</h2>
{_table_html(table)}
<h2>Figures</h2>
{figs}
<h2>Events ({len(run.events)})</h2>
{_events_html(run.events)}
</body></html>
"""
