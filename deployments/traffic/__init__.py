"""Traffic of a deployment: a canary on part of the requests, a shadow that gets a copy of
each, promotion, autoscaling (`changes.py`), and the automatic canary analysis that moves the
weight by itself (`analysis.py`)."""
