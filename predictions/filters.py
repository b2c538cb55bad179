from __future__ import annotations

import django_filters

from predictions.models import Prediction, RiskLevel


class PredictionFilter(django_filters.FilterSet):
    risk_level = django_filters.ChoiceFilter(choices=RiskLevel.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Prediction
        fields = ["risk_level", "site", "created_after", "created_before"]
