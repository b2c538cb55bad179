"""Admin list filters typed in rather than picked: a date range and a username.

Shared by the predictions admin and the audit log's admin. Each renders a small GET
form (templates/admin/input_filter.html) that keeps the changelist's other parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_date


class InputFilter(admin.ListFilter):
    """A filter whose values are typed: one input per name in `inputs` (name, label, type)."""

    template = "admin/input_filter.html"
    inputs: tuple[tuple[str, str, str], ...] = ()

    def __init__(
        self,
        request: HttpRequest,
        params: dict[str, Any],
        model: type[Model],
        model_admin: admin.ModelAdmin[Any],
    ) -> None:
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, str] = {}
        for name, _label, _type in self.inputs:
            if name in params:
                value = params.pop(name)
                value = value[-1] if isinstance(value, list) else value
                self.values[name] = str(value).strip()
        self.used_parameters = {k: v for k, v in self.values.items() if v}
        self._other = {k: v for k, v in request.GET.lists() if k not in dict.fromkeys(
            n for n, _l, _t in self.inputs)}

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return [name for name, _label, _type in self.inputs]

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        yield {
            "inputs": [
                {"name": n, "label": label, "type": t, "value": self.values.get(n, "")}
                for n, label, t in self.inputs
            ],
            # The changelist's other parameters ride along; the page number does not.
            "hidden": [(k, v) for k, values in self._other.items() for v in values if k != "p"],
            "clear_url": changelist.get_query_string(remove=[n for n, _l, _t in self.inputs]),
        }


def _day_start(value: str) -> dt.datetime | None:
    day = parse_date(value) if value else None
    if day is None:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class DateRangeFilter(InputFilter):
    """From (inclusive) and to (inclusive) days, in the site's time zone."""

    field_name = "timestamp"
    title = "date range"
    inputs = (("from", "From", "date"), ("to", "To (inclusive)", "date"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        since = _day_start(str(self.used_parameters.get("from", "")))
        until = _day_start(str(self.used_parameters.get("to", "")))
        if since is not None:
            queryset = queryset.filter(**{f"{self.field_name}__gte": since})
        if until is not None:
            queryset = queryset.filter(
                **{f"{self.field_name}__lt": until + dt.timedelta(days=1)}
            )
        return queryset


class ActorFilter(InputFilter):
    """The exact username of the actor."""

    title = "actor"
    inputs = (("actor", "Username", "text"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        username = self.used_parameters.get("actor")
        return queryset.filter(actor__username=username) if username else queryset
