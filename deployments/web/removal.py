"""Deleting and archiving from the UI: each a POST behind a confirmation dialog; refusals are
shown as a message in plain words (deployments/removal.py says them)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from deployments import removal
from deployments.artifacts.stores import StoreError
from deployments.models import Deployment, ModelVersion, RegisteredModel
from deployments.web.views import _require_deployer, login_required


def _refused(request: HttpRequest, exc: Exception) -> None:
    messages.error(request, str(exc))


@login_required
@require_POST
def deployment_delete(request: HttpRequest, name: str) -> HttpResponse:
    _require_deployer(request)
    deployment = get_object_or_404(
        Deployment.objects.select_related("model_version__model"), name=name
    )
    try:
        removal.delete_deployment(deployment, actor=request.user)
    except removal.RemovalRefused as exc:
        _refused(request, exc)
        return redirect("deployment-detail", name=name)
    messages.success(request, f"Deployment {name} deleted; the name {name} is free again.")
    return redirect("dashboard")


@login_required
@require_POST
def deployment_archive(request: HttpRequest, name: str) -> HttpResponse:
    _require_deployer(request)
    deployment = get_object_or_404(Deployment, name=name)
    archived = request.POST.get("archived", "yes") != "no"
    try:
        removal.archive_deployment(deployment, archived=archived, actor=request.user)
    except removal.RemovalRefused as exc:
        _refused(request, exc)
    else:
        messages.success(
            request,
            f"{name} archived: the dashboard hides it unless you show archived ones."
            if archived
            else f"{name} is back on the dashboard.",
        )
    return redirect("deployment-detail", name=name)


@login_required
@require_POST
def version_delete(request: HttpRequest, name: str, version: int) -> HttpResponse:
    _require_deployer(request)
    found = get_object_or_404(
        ModelVersion.objects.select_related("model"), model__name=name, version=version
    )
    try:
        removal.delete_model_version(found, actor=request.user)
    except removal.RemovalRefused as exc:
        _refused(request, exc)
    except StoreError as exc:
        messages.error(request, f"The artifact store did not answer; try again. ({exc})")
    else:
        messages.success(request, f"{name} v{version} and its artifact deleted.")
    return redirect("model-detail", name=name)


@login_required
@require_POST
def model_delete(request: HttpRequest, name: str) -> HttpResponse:
    _require_deployer(request)
    model = get_object_or_404(RegisteredModel, name=name)
    try:
        removal.delete_model(model, actor=request.user)
    except removal.RemovalRefused as exc:
        _refused(request, exc)
        return redirect("model-detail", name=name)
    messages.success(request, f"Model {name} deleted; the name {name} is free again.")
    return redirect("model-list")


@login_required
@require_POST
def model_archive(request: HttpRequest, name: str) -> HttpResponse:
    _require_deployer(request)
    model = get_object_or_404(RegisteredModel, name=name)
    archived = request.POST.get("archived", "yes") != "no"
    removal.archive_model(model, archived=archived, actor=request.user)
    messages.success(
        request,
        f"{name} archived: the models list hides it unless you show archived ones."
        if archived
        else f"{name} is back on the models list.",
    )
    return redirect("model-detail", name=name)
