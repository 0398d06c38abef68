"""``report.html``: one self-contained page (inline CSS, JS and SVG; nothing fetched), opens offline.

It shows the counts per reason, a histogram of the question/query scores with the threshold,
and the flagged pairs (lowest score first, at most ``--report-limit``) in a table that sorts
on a header click and filters by text and by reason; each query is shown with the spans its
diagnostics point at marked (red: error, yellow: warning; the message on hover and below).
The rows are rendered here, not by the script, so the page reads even without JavaScript.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from kgqa_validator.audit.output import describe

_TEMPLATE = "report_template.html"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _offset(lines: list[str], line: int, column: int) -> int | None:
    if not 1 <= line <= len(lines):
        return None
    return sum(len(text) + 1 for text in lines[:line - 1]) + column - 1


def marked_query(sparql: str, diagnostics: list[dict[str, Any]]) -> str:
    """The query as HTML with each located diagnostic's span in a ``<mark>``."""
    lines = sparql.split("\n")
    spans = []
    for d in diagnostics:
        if d.get("severity") == "info" or not d.get("line") or not d.get("column"):
            continue
        start = _offset(lines, d["line"], d["column"])
        if start is None or start >= len(sparql):
            continue
        length = max(1, len(d.get("excerpt") or "") if sparql[start:].startswith(
            d.get("excerpt") or "\0") else 1)
        spans.append((start, start + length, d))
    out, at = [], 0
    for start, end, d in sorted(spans, key=lambda s: s[0]):
        if start < at:
            continue  # overlapping spans: the first one is marked
        out.append(_esc(sparql[at:start]))
        out.append(f'<mark class="{_esc(d.get("severity"))}" title="{_esc(d.get("code"))}: '
                   f'{_esc(d.get("message"))}">{_esc(sparql[start:end])}</mark>')
        at = end
    out.append(_esc(sparql[at:]))
    return "".join(out)


def _histogram(summary: dict[str, Any]) -> str:
    hist = summary["histogram"]
    counts: list[int] = hist["counts"]
    low, high = hist["low"], hist["high"]
    width, height, left, right, bottom = 740, 200, 40, 20, 24
    top = max([*counts, 1])
    step = (width - left - right) / len(counts)
    threshold = summary.get("threshold")
    parts = [f'<svg id="histogram" role="img" aria-label="score histogram" width="{width}" '
             f'height="{height + bottom}" viewBox="0 0 {width} {height + bottom}" '
             'xmlns="http://www.w3.org/2000/svg">']
    for i, count in enumerate(counts):
        bin_low = low + i * (high - low) / len(counts)
        bar_h = (height - 10) * count / top
        below = threshold is not None and bin_low + (high - low) / len(counts) <= threshold
        parts.append(f'<rect class="bar{" low" if below else ""}" x="{left + i * step + 1:.1f}" '
                     f'y="{height - bar_h:.1f}" width="{step - 2:.1f}" height="{bar_h:.1f}">'
                     f'<title>{bin_low:.2f} to {bin_low + (high - low) / len(counts):.2f}: '
                     f'{count} pairs</title></rect>')
    for i in range(0, len(counts) + 1, 4):
        x = left + i * step
        parts.append(f'<text x="{x:.1f}" y="{height + 16}" text-anchor="middle">'
                     f'{round(low + i * (high - low) / len(counts), 1) + 0.0:.1f}</text>')
    parts.append(f'<text x="{left - 6}" y="12" text-anchor="end">{top}</text>'
                 f'<text x="{left - 6}" y="{height}" text-anchor="end">0</text>')
    if threshold is not None:
        x = left + (threshold - low) / (high - low) * (width - left - right)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#1d2329" '
                     f'stroke-dasharray="4 3"/><text x="{x + 4:.1f}" y="12">threshold '
                     f'{threshold:.3f}</text>')
    if not any(counts):
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">'
                     'no scores (--no-score, or no pair could be scored)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _pair_row(row: dict[str, Any]) -> str:
    reasons = row.get("reasons") or []
    diagnostics = [d for d in row.get("diagnostics") or [] if d.get("severity") != "info"]
    query = row.get("sparql")
    items = "".join(f"<li><b>{_esc(d.get('code'))}</b> {_esc(d.get('message'))}</li>"
                    for d in diagnostics)
    items += "".join(f"<li>question: <b>{_esc(d.get('code'))}</b> {_esc(d.get('message'))}</li>"
                     for d in row.get("question_diagnostics") or [] if d.get("severity") != "info")
    if row.get("error"):
        items += f"<li><b>error</b> {_esc(row['error'])}</li>"
    score, pscore = row.get("score"), row.get("paraphrase_score")
    paraphrase = row.get("paraphrase")
    question_cell = _esc(row.get("question")) + (
        f'<div class="meta">paraphrase: {_esc(paraphrase)}</div>' if paraphrase else "")
    return (f'<tr data-index="{row["index"]}" data-id="{_esc(row.get("id"))}" '
            f'data-score="{"" if score is None else score}" '
            f'data-pscore="{"" if pscore is None else pscore}" '
            f'data-reasons="{_esc(" ".join(reasons))}" data-question="{_esc(row.get("question"))}" '
            f'data-query="{_esc(query)}">'
            f'<td>{_esc(row.get("id"))}</td>'
            f'<td class="score">{"–" if score is None else f"{score:.3f}"}</td>'
            f'<td class="score">{"–" if pscore is None else f"{pscore:.3f}"}</td>'
            f'<td>{"".join(f"<span class=reason>{_esc(r)}</span>" for r in reasons)}</td>'
            f'<td>{question_cell}</td>'
            f'<td><pre class="q">{marked_query(query, diagnostics) if query else "–"}</pre>'
            f'{f"<ul class=diag>{items}</ul>" if items else ""}</td></tr>')


def render(summary: dict[str, Any], flagged: list[dict[str, Any]]) -> str:
    template = Template(resources.files("kgqa_validator.audit").joinpath(_TEMPLATE)
                        .read_text(encoding="utf-8"))
    reasons = summary["reasons"]
    top = max((r["count"] for r in reasons.values()), default=1) or 1
    reason_rows = "".join(
        f'<tr><td><span class="reason">{_esc(code)}</span></td><td class="n">{info["count"]:,}</td>'
        f'<td><div class="rbar" style="width:{100 * info["count"] / top:.1f}%"></div></td>'
        f'<td>{_esc(info.get("meaning") or describe(code))}</td></tr>'
        for code, info in reasons.items()) or '<tr><td colspan="4">no pair flagged</td></tr>'
    threshold = summary.get("threshold")
    cards = "".join(f'<div class="card"><b>{value}</b>{_esc(label)}</div>' for label, value in (
        ("pairs", f"{summary['pairs']:,}"), ("flagged", f"{summary['flagged']:,}"),
        ("valid queries", f"{summary['valid_queries']:,}"), ("scored", f"{summary['scored']:,}"),
        ("threshold", "–" if threshold is None else f"{threshold:.3f}")))
    shown = len(flagged)
    note = (f"{shown:,} of {summary['flagged']:,} flagged pairs, lowest score first"
            + (" (raise --report-limit for more; pairs.jsonl has all)" if shown < summary["flagged"]
               else "") + ". Click a header to sort.")
    run = summary.get("run") or {}
    meta = (f"{_esc(summary.get('dataset'))} ({_esc(summary.get('format'))}), engine "
            f"{_esc(summary.get('engine'))}, {run.get('pairs_per_s', '–')} pairs/s")
    return template.substitute(
        title=_esc(Path(str(summary.get("dataset", ""))).name), meta=meta, cards=cards,
        reason_rows=reason_rows, histogram=_histogram(summary), table_note=_esc(note),
        reason_options="".join(f'<option value="{_esc(c)}">{_esc(c)}</option>' for c in reasons),
        pair_rows="".join(_pair_row(r) for r in flagged))


def write_report(path: Path, summary: dict[str, Any], flagged: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(summary, flagged), encoding="utf-8", errors="backslashreplace")
    tmp.replace(path)
