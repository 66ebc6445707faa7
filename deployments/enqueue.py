"""Work for the Celery worker (deployments/tasks.py), queued by its task's name.

The modules that ask for work (lifecycle.py, traffic/changes.py, logs.py) name the task rather
than import the tasks module, whose tasks call back into them (the traffic tick promotes through
traffic/changes.py): the imports run one way, and the message queued is the one the task's own
`delay` would send. Names are the tasks' full names, as beat's schedule in settings gives them.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction

DEPLOY = "deployments.tasks.deploy_deployment"
UNDEPLOY = "deployments.tasks.undeploy_deployment"
COLLECT_LOGS = "deployments.tasks.collect_logs"


def enqueue(task: str, *args: object) -> None:
    """Queue `task(*args)` for a worker now."""
    current_app.send_task(task, args=args)


def enqueue_on_commit(task: str, *args: object) -> None:
    """Queue `task(*args)` once the current transaction commits (at once outside one), so the
    worker reads what the transaction wrote."""
    transaction.on_commit(lambda: enqueue(task, *args))
