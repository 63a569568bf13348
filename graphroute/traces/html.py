"""The trace report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Dense on purpose (in the spirit of a telemetry dashboard): headline figures, spend over time
stacked by model, budget against spend, one table per node and per model, the pillars'
decision mix, quality signals and feedback, and the latest runs. Opens from a file anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from graphroute.traces.render import money
from graphroute.traces.report import GroupRow, Report

PALETTE = ("#3b6fb6", "#e0823d", "#4f9d69", "#c4504f", "#8a6bbe", "#8c6d4f", "#d16fa6", "#7f7f7f", "#b5b83d", "#3fb5c4")

CSS = """
body{font:13px/1.35 system-ui,sans-serif;margin:16px 22px;color:#1d232b;background:#fafbfc}
h1{font-size:19px;margin:0 0 2px}h2{font-size:14px;margin:18px 0 6px;border-bottom:1px solid #d7dce2;padding-bottom:2px}
.sub{color:#5b6572;font-size:12px}
.kpis{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0}
.kpi{background:#fff;border:1px solid #dfe3e8;border-radius:6px;padding:6px 10px;min-width:104px}
.kpi b{display:block;font-size:16px;font-variant-numeric:tabular-nums}.kpi span{color:#5b6572;font-size:11px}
table{border-collapse:collapse;background:#fff;font-size:12px;margin-bottom:6px}
th,td{border:1px solid #e1e5ea;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px 22px}
.bad{color:#b3261e;font-weight:600}.muted{color:#7a8490}.sw{display:inline-block;width:9px;height:9px;margin-right:4px}
svg text{font:10px system-ui,sans-serif;fill:#5b6572}
"""


def _num(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if value is None else fmt.format(value)


def _pct(value: float) -> str:
    return f"{value:.0%}" if value else "0%"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "—"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>" for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _mix(mix: dict[str, int]) -> str:
    return ", ".join(f"{escape(name)}&nbsp;{count}" for name, count in mix.items())


def _group_table(rows: Sequence[GroupRow], first: str, mix_label: str) -> str:
    headers = [first, "calls", mix_label, "in tok", "out tok", "cost", "p50 ms", "p95 ms"]
    headers += ["cache", "batched", "dedup", "errors", "retries", "score (n)", "flagged"]
    body = [
        [
            escape(row.name),
            f"{row.calls:,}",
            _mix(row.models),
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            money(row.cost_usd),
            _num(row.p50_ms),
            _num(row.p95_ms),
            _pct(row.cache_rate),
            _pct(row.batch_rate),
            _pct(row.dedup_rate),
            f'<span class="bad">{row.errors}</span>' if row.errors else "0",
            str(row.retries),
            "—" if row.score is None else f"{row.score:.2f} ({row.scored})",
            f'<span class="bad">{row.flagged}</span>' if row.flagged else "0",
        ]
        for row in rows
    ]
    return _table(headers, body, {1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})


def _spend_chart(report: Report, colours: dict[str, str]) -> str:
    series = report.spend_series
    if not series:
        return '<p class="muted">No calls recorded.</p>'
    width, height, left, bottom = 860, 170, 64, 22
    totals = [sum(values.values()) for _, values in series]
    peak = max(totals) or 1.0
    slot = (width - left - 8) / len(series)
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="spend over time">']
    for fraction in (0, 0.5, 1):
        y = height - bottom - fraction * (height - bottom - 8)
        parts.append(f'<line x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e8ec"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{money(peak * fraction)}</text>')
    for i, (start, values) in enumerate(series):
        x, y = left + i * slot, height - bottom
        for model, cost in sorted(values.items()):
            h = cost / peak * (height - bottom - 8)
            y -= h
            label = f"{_when(start)} · {model}: {money(cost)}"
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{colours.get(model, "#999")}"><title>{escape(label)}</title></rect>'
            )
    for i in sorted({0, len(series) // 2, len(series) - 1}):
        x = left + i * slot + slot / 2
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{_when(series[i][0])[5:16]}</text>')
    parts.append("</svg>")
    legend = " ".join(
        f'<span><i class="sw" style="background:{colours[m]}"></i>{escape(m)} {money(c)}</span>'
        for m, c in report.spend_by_model.items()
    )
    minutes = report.bucket_s / 60
    step = (
        f"{minutes:.0f} min"
        if minutes < 60
        else f"{minutes / 60:.0f} h"
        if minutes < 1440
        else f"{minutes / 1440:.0f} d"
    )
    return "".join(parts) + f'<div class="sub">bars: spend per {step}, stacked by model · {legend}</div>'


def _budget(report: Report) -> str:
    if not report.budgets:
        return f'<p class="muted">No run was given a budget; total spend {money(report.spend_usd)}.</p>'
    over = [row for row in report.budgets if row.spend_usd > row.budget_usd]
    total_budget = sum(row.budget_usd for row in report.budgets)
    total_spend = sum(row.spend_usd for row in report.budgets)
    runs = f"{len(report.budgets)} run{'s' if len(report.budgets) != 1 else ''}"
    head = (
        f"<p>{runs} with a budget: spend {money(total_spend)} of {money(total_budget)} "
        f'({total_spend / total_budget:.0%}); <span class="{"bad" if over else ""}">{len(over)} over budget.</span></p>'
    )
    worst = sorted(report.budgets, key=lambda row: -row.share)[:12]
    rows = [[escape(r.run_id[:8]), money(r.budget_usd), money(r.spend_usd), f"{r.share:.0%}"] for r in worst]
    return head + _table(["run", "budget", "spend", "used"], rows, {1, 2, 3})


def _decisions(report: Report) -> str:
    pillars = [
        [
            escape(p.pillar),
            str(p.signals),
            _num(p.mean_difficulty, "{:.2f}"),
            _num(p.mean_confidence, "{:.2f}"),
            str(p.local_only),
            str(p.named_chosen),
        ]
        for p in report.pillars
    ]
    table = (
        _table(
            ["pillar", "signals", "mean difficulty", "mean confidence", "local-only", "its model chosen"],
            pillars,
            {1, 2, 3, 4, 5},
        )
        if pillars
        else '<p class="muted">No pillar signals recorded (static routing).</p>'
    )
    reasons = _table(["decision reason", "calls"], [[escape(r), str(n)] for r, n in report.reasons], {1})
    return table + reasons


def _quality(report: Report) -> str:
    signals = _table(["automatic signal", "calls"], [[escape(s), str(n)] for s, n in report.signal_counts.items()], {1})
    if not report.signal_counts:
        signals = '<p class="muted">No automatic quality signal fired.</p>'
    rows = [[escape(name), str(n), f"{mean:.2f}"] for name, n, mean in report.feedback]
    feedback = (
        _table(["feedback on", "scores", "mean"], rows, {1, 2}) if rows else '<p class="muted">No feedback given.</p>'
    )
    return signals + feedback


def _runs(report: Report) -> str:
    rows = []
    for run in sorted(report.runs, key=lambda r: -r.started_at)[:15]:
        calls, cost = report.run_costs.get(run.run_id, (0, 0.0))
        seconds = None if run.ended_at is None else run.ended_at - run.started_at
        status = f'<span class="bad">{escape(run.status)}</span>' if run.status == "error" else escape(run.status)
        budget = "—" if run.budget_usd is None else money(run.budget_usd)
        rows.append(
            [
                escape(run.run_id[:8]),
                _when(run.started_at),
                status,
                str(calls),
                money(cost),
                _num(seconds, "{:.1f}"),
                budget,
            ]
        )
    return _table(["run", "started", "status", "calls", "cost", "seconds", "budget"], rows, {3, 4, 5, 6})


def render_html(report: Report) -> str:
    """The whole page as a string."""
    models = list(report.spend_by_model) + [row.name for row in report.models if row.name not in report.spend_by_model]
    colours = {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(models)}
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(report.status_counts.items()))
    kpis = [
        ("total spend", money(report.spend_usd)),
        ("runs", f"{len(report.runs):,}"),
        ("calls", f"{report.calls:,}"),
        ("input tokens", f"{report.input_tokens:,}"),
        ("output tokens", f"{report.output_tokens:,}"),
        ("cost / run", money(report.spend_usd / len(report.runs)) if report.runs else "—"),
        ("cache hits", _pct(report.rate("cache_hit"))),
        ("batched", _pct(report.rate("batched"))),
        ("errors", _pct(report.rate("error"))),
    ]
    kpi_html = "".join(f'<div class="kpi"><b>{value}</b><span>{escape(label)}</span></div>' for label, value in kpis)
    sections = [
        f"<h1>{escape(report.title)}</h1>",
        f'<div class="sub">graphs: {escape(", ".join(report.graphs) or "—")} · {_when(report.first)} → '
        f"{_when(report.last)} · runs: {escape(statuses or 'none')}</div>",
        f'<div class="kpis">{kpi_html}</div>',
        "<h2>Spend over time</h2>",
        _spend_chart(report, colours),
        '<div class="grid"><div><h2>Budget vs spend</h2>',
        _budget(report),
        "</div><div><h2>Quality signals and feedback</h2>",
        _quality(report),
        "</div></div>",
        "<h2>Per node</h2>",
        _group_table(report.nodes, "node", "model mix"),
        "<h2>Per model</h2>",
        _group_table(report.models, "model", "nodes"),
        '<div class="grid"><div><h2>Pillar decision mix</h2>',
        _decisions(report),
        "</div><div><h2>Latest runs</h2>",
        _runs(report),
        "</div></div>",
        '<p class="sub">Latency percentiles exclude cache hits and failed calls. "score": mean known quality '
        '(outcomes, feedback, automatic failures); "flagged": calls with a hard automatic failure.</p>',
    ]
    body = "\n".join(sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(report.title)}</title>'
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_html(report: Report, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
