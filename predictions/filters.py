from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from predictions.models import Prediction, RiskLevel

# Real time zones stay within UTC-12:00..+14:00; PostgreSQL refuses offsets past 15:59
# (a DataError, which would surface as a 503), Python accepts up to 23:59.
MAX_UTC_OFFSET = timedelta(hours=14)


class BoundedIsoDateTimeField(IsoDateTimeField):
    def clean(self, value: Any) -> datetime | None:
        cleaned: datetime | None = super().clean(value)
        offset = cleaned.utcoffset() if cleaned is not None else None
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise forms.ValidationError("The UTC offset must be between -14:00 and +14:00.")
        return cleaned


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class PredictionFilter(django_filters.FilterSet):
    risk_level = django_filters.ChoiceFilter(choices=RiskLevel.choices)
    created_after = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Prediction
        fields = ["risk_level", "site", "created_after", "created_before"]
