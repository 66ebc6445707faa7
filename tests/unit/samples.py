"""Inputs the forms and the serializers must agree on (both take their rules from constants.py)."""

from __future__ import annotations

from deployments import constants as st

GOOD_NAMES = ["a", "iris", "iris-prod-2", "a" * st.NAME_MAX_LENGTH]
BAD_NAMES = ["Iris", "1iris", "-iris", "iris-", "iris_prod", "iris.prod", "a" * 64, "ïris"]
GOOD_QUANTITIES = ["100m", "0.5", "1", "256Mi", "1Gi", "2G", "1.5Ti", "64k"]
BAD_QUANTITIES = ["abc", "1.", ".5", "-1", "1 Gi", "1gi", "1e3", "100mm", "1" * 17]
