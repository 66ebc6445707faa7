"""Deployment status values (DESIGN.md 3.3) and the transitions allowed between them."""

from __future__ import annotations

PENDING = "pending"
DEPLOYING = "deploying"
RUNNING = "running"
DEGRADED = "degraded"
FAILED = "failed"
STOPPING = "stopping"
STOPPED = "stopped"

CHOICES = [(s, s) for s in (PENDING, DEPLOYING, RUNNING, DEGRADED, FAILED, STOPPING, STOPPED)]

# Where a deployment may go from each status. Undeploy is possible from anywhere but stopped.
TRANSITIONS: dict[str, set[str]] = {
    PENDING: {DEPLOYING, FAILED, STOPPING},
    DEPLOYING: {RUNNING, DEGRADED, FAILED, STOPPING, PENDING},
    RUNNING: {DEPLOYING, DEGRADED, FAILED, STOPPING, PENDING},
    DEGRADED: {RUNNING, DEPLOYING, FAILED, STOPPING, PENDING},
    FAILED: {PENDING, DEPLOYING, RUNNING, DEGRADED, STOPPING},
    STOPPING: {STOPPED, FAILED},
    STOPPED: {PENDING},
}

# Statuses in which the deployment is meant to be serving (the reconcile loop watches these).
ACTIVE = {PENDING, DEPLOYING, RUNNING, DEGRADED, FAILED}
# Statuses a user can deploy (or redeploy) from.
DEPLOYABLE = {STOPPED, FAILED, RUNNING, DEGRADED}
UNDEPLOYABLE = {PENDING, DEPLOYING, RUNNING, DEGRADED, FAILED}
