"""Reads for the admin's dashboard: a few aggregate figures, one query each.

Refusals (uploads turned away: not a photo, no eyelid found...) are not stored; the
dashboard says so and points to the `healthguard_api_errors` metric that counts them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone

from predictions.models import Prediction, RiskLevel, Segmentation

WEEKS = 12


@dataclass(frozen=True)
class WeekRow:
    week: dt.date
    counts: dict[str, int]
    total: int


@dataclass(frozen=True)
class Dashboard:
    since: dt.date
    by_risk: list[WeekRow]
    by_site: list[WeekRow]
    sites: list[str]
    automatic: int
    total: int
    max_week_total: int = field(default=0)

    @property
    def automatic_share(self) -> float:
        return self.automatic / self.total if self.total else 0.0


def _weeks(rows: list[dict[str, object]], key: str) -> list[WeekRow]:
    by_week: dict[dt.date, dict[str, int]] = {}
    for row in rows:
        week = row["week"]
        day = week.date() if isinstance(week, dt.datetime) else week
        assert isinstance(day, dt.date)
        counts = by_week.setdefault(day, {})
        counts[str(row[key])] = int(row["n"])  # type: ignore[call-overload]
    return [
        WeekRow(week=w, counts=c, total=sum(c.values())) for w, c in sorted(by_week.items())
    ]


def dashboard_figures(*, weeks: int = WEEKS, now: dt.datetime | None = None) -> Dashboard:
    """Predictions per week (last `weeks` weeks) by risk level and by site, and the share
    of automatic segmentation over the same period: three queries."""
    now = now or timezone.now()
    since = timezone.localdate(now) - dt.timedelta(weeks=weeks)
    recent = Prediction.objects.filter(created_at__date__gte=since).order_by()
    weekly = recent.annotate(week=TruncWeek("created_at"))
    by_risk = _weeks(
        list(weekly.values("week", "risk_level").annotate(n=Count("id")).order_by("week")),
        "risk_level",
    )
    by_site = _weeks(
        list(weekly.values("week", "site").annotate(n=Count("id")).order_by("week")), "site"
    )
    seg = recent.aggregate(
        total=Count("id"), automatic=Count("id", filter=Q(segmentation=Segmentation.AUTOMATIC))
    )
    sites = sorted({s for row in by_site for s in row.counts})
    return Dashboard(
        since=since,
        by_risk=by_risk,
        by_site=by_site,
        sites=sites,
        automatic=seg["automatic"],
        total=seg["total"],
        max_week_total=max((r.total for r in by_risk), default=0),
    )


RISK_ORDER = [level.value for level in RiskLevel]
