"""Browser UI. Views are thin: forms validate, registry and lifecycle functions do the work."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from deployments import lifecycle
from deployments.api.permissions import can_deploy
from deployments.forms import ChangeVersionForm, DeployForm, ModelForm, PredictForm, UploadForm
from deployments.models import Deployment, RegisteredModel
from deployments.predictions import forward_prediction
from deployments.registry import upload_version
from deployments.sandbox import ArtifactRejected


def _require_deployer(request: HttpRequest) -> None:
    if not can_deploy(request.user):
        raise PermissionDenied("You need the deployer role for this action.")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    deployments = Deployment.objects.select_related("model_version__model")
    return render(request, "deployments/dashboard.html", {"deployments": deployments})


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    form = ModelForm(request.POST or None)
    if request.method == "POST":
        _require_deployer(request)
        if form.is_valid():
            model = form.save(commit=False)
            model.created_by = request.user
            model.save()
            messages.success(request, f"Model {model.name} registered. Upload a version next.")
            return redirect("model-detail", name=model.name)
    models = RegisteredModel.objects.annotate(latest=Max("versions__version"))
    return render(request, "deployments/models.html", {"models": models, "form": form})


@login_required
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = get_object_or_404(RegisteredModel, name=name)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        _require_deployer(request)
        if form.is_valid():
            try:
                version = upload_version(
                    model,
                    request.FILES["file"].chunks(),
                    model_type=form.cleaned_data["model_type"],
                    uploaded_by=request.user,
                )
            except ArtifactRejected as exc:
                form.add_error("file", str(exc))
            else:
                messages.success(request, f"Version {version.version} uploaded and validated.")
                return redirect("model-detail", name=model.name)
    versions = model.versions.select_related("uploaded_by")
    return render(
        request, "deployments/model.html", {"model": model, "versions": versions, "form": form}
    )


@login_required
def deployment_new(request: HttpRequest) -> HttpResponse:
    _require_deployer(request)
    form = DeployForm(request.POST or None, initial={"version": request.GET.get("version")})
    if request.method == "POST" and form.is_valid():
        try:
            deployment = lifecycle.create_deployment(
                name=form.cleaned_data["name"],
                version=form.cleaned_data["version"],
                replicas=form.cleaned_data["replicas"],
                actor=request.user,
            )
        except lifecycle.LifecycleError as exc:
            form.add_error("name", str(exc))
        else:
            return redirect("deployment-detail", name=deployment.name)
    return render(request, "deployments/deploy.html", {"form": form})


@login_required
def deployment_detail(request: HttpRequest, name: str) -> HttpResponse:
    deployment = get_object_or_404(
        Deployment.objects.select_related("model_version__model", "previous_version"), name=name
    )
    predict_form = PredictForm(request.POST or None)
    result = None
    if request.method == "POST" and predict_form.is_valid():
        result = forward_prediction(deployment, predict_form.cleaned_data["rows"])
    return render(
        request,
        "deployments/deployment.html",
        {
            "deployment": deployment,
            "events": deployment.events.select_related("actor")[:50],
            "predict_form": predict_form,
            "change_form": ChangeVersionForm(deployment=deployment),
            "result": result,
            "classes": (
                result.body.get("classes") if result and isinstance(result.body, dict) else None
            ),
        },
    )


@login_required
@require_POST
def deployment_action(request: HttpRequest, name: str, action: str) -> HttpResponse:
    _require_deployer(request)
    deployment = get_object_or_404(Deployment, name=name)
    try:
        if action == "undeploy":
            lifecycle.undeploy(deployment, actor=request.user)
        elif action == "deploy":
            lifecycle.deploy(deployment, actor=request.user)
        elif action == "rollback":
            lifecycle.rollback(deployment, actor=request.user)
        elif action == "change":
            form = ChangeVersionForm(request.POST, deployment=deployment)
            if not form.is_valid():
                messages.error(request, "Choose a version of this model.")
                return redirect("deployment-detail", name=name)
            lifecycle.change(deployment, version=form.cleaned_data["version"], actor=request.user)
        else:
            raise PermissionDenied(f"unknown action {action}")
    except lifecycle.LifecycleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{action.capitalize()} requested.")
    return redirect("deployment-detail", name=name)
