"""Cost of ownership over a horizon, per candidate route: serving cost month by month from the route's
measured capacity, the price of an instance and the traffic growing at the user's rate, plus the exposure
of leaving the route, from its lock-in score and a migration cost the user states.

Nothing here is invented: every input is a measured figure (capacity: LoadGen's Server capacity at the
budget where it was measured, else calls back to back; see audit_evidence._throughput) or a number the
user gave (--price-per-hour, --traffic, --growth, --migration-cost). Without a price and a traffic there is
no cost to compute, and the audit says so.
"""

from __future__ import annotations

import math
from typing import Any

from convcheck.reports.audit_evidence import HOURS_PER_MONTH


def assumptions(horizon_years: float, price: float | None, traffic: float | None, growth: float,
                migration_cost: float | None) -> dict[str, Any]:
    """The inputs of every curve, as the memo states them."""
    return {"horizon_years": horizon_years, "price_per_hour_usd": price, "traffic_per_s": traffic,
            "growth_per_year": growth, "migration_cost_usd": migration_cost, "hours_per_month": HOURS_PER_MONTH,
            "text": _text(horizon_years, price, traffic, growth, migration_cost)}


def _text(horizon: float, price: float | None, traffic: float | None, growth: float,
          migration: float | None) -> str:
    if price is None or traffic is None:
        return ("no cost of ownership: it needs --price-per-hour and --traffic (what an instance costs, how many "
                "inferences per second it must serve)")
    out = (f"{horizon:g} years of serving {traffic:g} inferences/s growing {growth * 100:g}% a year, at "
           f"${price:g} per instance-hour ({HOURS_PER_MONTH:g} hours a month); each month the instances a route "
           "needs are ceil(traffic that month / its measured capacity per instance)")
    if migration is None:
        out += ("; migration exposure not counted (give --migration-cost: what moving a fully locked deployment "
                "to another route would cost you)")
    else:
        out += (f"; migration exposure = lock-in score / 100 x ${migration:,.0f} (your estimate of leaving a fully "
                "locked route), added at the horizon")
    return out


def curve(candidate: dict[str, Any], horizon_years: float, price: float | None, traffic: float | None,
          growth: float, migration_cost: float | None) -> dict[str, Any] | None:
    """The candidate's cumulative cost month by month and its total over the horizon, or None when a price,
    a traffic or the candidate's capacity is missing."""
    tput = candidate.get("throughput") or {}
    per_s = tput.get("per_s")
    if price is None or traffic is None or not per_s or per_s <= 0:
        return None
    months = max(1, int(round(horizon_years * 12)))
    cumulative, points, instances_by_month = 0.0, [(0.0, 0.0)], []
    for month in range(months):
        load = traffic * (1.0 + growth) ** (month / 12.0)
        instances = max(1, math.ceil(load / per_s))
        instances_by_month.append(instances)
        cumulative += instances * price * HOURS_PER_MONTH
        points.append(((month + 1) / 12.0, cumulative))
    lockin = (candidate.get("lockin") or {}).get("score")
    exposure = None if migration_cost is None or lockin is None else lockin / 100.0 * migration_cost
    return {"serving_usd": cumulative, "migration_exposure_usd": exposure,
            "total_usd": cumulative + (exposure or 0.0), "points": points,
            "instances_first": instances_by_month[0], "instances_last": instances_by_month[-1],
            "capacity_per_s": per_s, "capacity_basis": tput.get("basis"),
            "measured_under_load": bool(tput.get("measured_under_load")),
            # the traffic at which the route needs one more instance than it starts with
            "next_instance_at_per_s": instances_by_month[0] * per_s}


def chart(curves: dict[str, dict[str, Any]], highlight: str | None) -> str | None:
    """Inline SVG: cumulative cost (USD) against years, one line per candidate; the primary drawn bold."""
    from convcheck.reports.escaping import esc

    drawn = {k: v for k, v in curves.items() if v and v.get("points")}
    if not drawn:
        return None
    width, height, left, bottom, top, right = 640, 300, 70, 40, 16, 200
    x_max = max(p[0] for c in drawn.values() for p in c["points"]) or 1.0
    y_max = max(c["total_usd"] for c in drawn.values()) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + x / x_max * plot_w, top + plot_h - y / y_max * plot_h

    palette = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a", "#e16f24", "#0550ae"]
    parts = [f"<svg class='chart' viewBox='0 0 {width} {height}' role='img' "
             "aria-label='cumulative cost of ownership per route'>",
             f"<line x1='{left}' y1='{top + plot_h}' x2='{left + plot_w}' y2='{top + plot_h}' stroke='#57606a'/>",
             f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + plot_h}' stroke='#57606a'/>"]
    for i in range(5):
        value = y_max * i / 4
        _, y = xy(0, value)
        parts.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>${value:,.0f}</text>")
    for year in range(int(math.floor(x_max)) + 1):
        x, _ = xy(year, 0)
        parts.append(f"<text x='{x:.1f}' y='{top + plot_h + 16}' text-anchor='middle'>{year}</text>")
    parts.append(f"<text x='{left + plot_w / 2}' y='{height - 4}' text-anchor='middle'>years</text>")
    for n, (name, c) in enumerate(sorted(drawn.items())):
        colour = palette[n % len(palette)]
        path = " ".join(f"{xy(x, y)[0]:.1f},{xy(x, y)[1]:.1f}" for x, y in c["points"])
        bold = name == highlight
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='{3 if bold else 1.5}' points='{path}'>"
                     f"<title>{esc(name)}: ${c['total_usd']:,.0f}</title></polyline>")
        if c.get("migration_exposure_usd"):
            x, y = xy(x_max, c["total_usd"])
            parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{colour}'><title>{esc(name)}: with migration "
                         f"exposure ${c['migration_exposure_usd']:,.0f}</title></circle>")
        ly = top + 14 * n + 8
        weight = " font-weight='bold'" if bold else ""
        parts.append(f"<rect x='{left + plot_w + 10}' y='{ly - 8}' width='10' height='3' fill='{colour}'/>"
                     f"<text x='{left + plot_w + 24}' y='{ly}'{weight}>{esc(name[:30])}</text>")
    parts.append("</svg>")
    return "".join(parts)
