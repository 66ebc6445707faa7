"""The traffic panel of the deployment page: each version's share and live numbers (polled by
htmx), and the forms that set a canary or shadow, promote, or end either. Thin: the work is
`deployments.traffic.changes`, as for the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployments.lifecycle import LifecycleError
from deployments.models import Deployment
from deployments.traffic.changes import change_traffic, promote
from deployments.web.forms import TrafficForm
from deployments.web.views import _get_deployment, _require_deployer, login_required

OPERATIONS = ("canary", "shadow", "promote", "end-canary", "end-shadow")


def traffic_context(deployment: Deployment) -> dict[str, Any]:
    return {"deployment": deployment, "traffic_rows": deployment.traffic_rows()}


@login_required
@require_GET
def traffic_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """The versions' weights and live numbers, polled by htmx."""
    context = traffic_context(_get_deployment(name))
    return render(request, "deployments/partials/traffic_live.html", context)


def _message(error: str) -> str:
    return f"{error[:1].upper()}{error[1:]}."


@login_required
@require_POST
def traffic_change(request: HttpRequest, name: str, operation: str) -> HttpResponse:
    if operation not in OPERATIONS:
        raise Http404(f"no traffic operation {operation}")
    _require_deployer(request)
    deployment = _get_deployment(name)
    form = TrafficForm(request.POST, deployment=deployment)
    try:
        if operation == "promote":
            canary = deployment.canary_version
            promote(deployment, actor=request.user)
            done = f"Promoting v{canary.version}: it will answer every request." if canary else ""
        elif operation == "end-canary":
            change_traffic(deployment, canary=None, actor=request.user)
            done = "Canary ended: the primary answers every request."
        elif operation == "end-shadow":
            change_traffic(deployment, shadow=None, actor=request.user)
            done = "Shadow ended."
        elif not form.is_valid() or form.cleaned_data["version"] is None:
            if form.is_valid():
                form.add_error("version", "Choose the version to send traffic to.")
            errors = [f"{field}: {' '.join(e)}" for field, e in form.errors.items()]
            messages.error(request, " ".join(errors))
            return redirect("deployment-detail", name=name)
        elif operation == "canary":
            version = form.cleaned_data["version"]
            weight = form.cleaned_data["weight"] or 0
            change_traffic(deployment, canary=version, weight=weight, actor=request.user)
            done = f"Canary v{version.version} at {weight}%."
        else:
            version = form.cleaned_data["version"]
            change_traffic(deployment, shadow=version, actor=request.user)
            done = f"Shadow v{version.version}: it gets a copy of every request."
    except LifecycleError as exc:
        messages.error(request, _message(str(exc)))
    else:
        messages.success(request, done)
    return redirect("deployment-detail", name=name)
