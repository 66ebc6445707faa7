"""Browser UI. Views are thin: forms validate, registry and lifecycle functions do the work.

Live parts are server-rendered fragments that htmx polls (`*_fragment` views); every page also
works as plain HTML forms without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required as django_login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from deployments import constants as st
from deployments import lifecycle
from deployments.artifacts.stores import StoreError
from deployments.constants import CLASSIFICATION
from deployments.logs import deployment_logs
from deployments.models import Deployment, ModelVersion, RegisteredModel
from deployments.predictions import PredictionResult, forward_prediction
from deployments.registry.errors import ArtifactRejected
from deployments.registry.upload_handler import upload_refusal
from deployments.registry.versions import upload_version
from deployments.roles import can_deploy
from deployments.web import presenters
from deployments.web.forms import (
    ChangeVersionForm,
    DeployForm,
    ModelForm,
    PredictForm,
    ScaleForm,
    TabularPredictForm,
    UploadForm,
    check_deployment_name,
)

ACTIONS = ("deploy", "undeploy", "rollback", "change", "scale")


def login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Django's login_required, except that htmx requests (polls, the name check) whose session
    has ended reload the page, which then goes to the login page, instead of having the login
    page swapped into a fragment."""
    plain = django_login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.headers.get("HX-Request") == "true" and not request.user.is_authenticated:
            return HttpResponse(status=204, headers={"HX-Refresh": "true"})
        return plain(request, *args, **kwargs)

    return wrapper


def _require_deployer(request: HttpRequest) -> None:
    if not can_deploy(request.user):
        raise PermissionDenied("You need the deployer role for this action.")


def _is_fragment(request: HttpRequest) -> bool:
    """htmx and the upload script ask for a fragment; plain form posts get whole pages."""
    return (
        request.headers.get("HX-Request") == "true"
        or request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )


def _deployments():
    return Deployment.objects.select_related("model_version__model")


# Dashboard ----------------------------------------------------------------------------------


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "deployments/dashboard.html", {"deployments": _deployments()})


@login_required
@require_GET
def dashboard_fragment(request: HttpRequest) -> HttpResponse:
    return render(
        request, "deployments/partials/deployment_table.html", {"deployments": _deployments()}
    )


# Models and versions ------------------------------------------------------------------------


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    form = ModelForm(request.POST or None)
    if request.method == "POST":
        _require_deployer(request)
        if form.is_valid():
            model = form.save(commit=False)
            model.created_by = request.user
            model.save()
            messages.success(request, f"Model {model.name} registered. Upload its first version.")
            return redirect("model-upload", name=model.name)
    models = RegisteredModel.objects.annotate(
        latest=Max("versions__version"), version_count=Count("versions")
    )
    status = 400 if form.errors else 200
    return render(
        request, "deployments/models.html", {"models": models, "form": form}, status=status
    )


@login_required
@require_GET
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = get_object_or_404(RegisteredModel, name=name)
    versions = model.versions.select_related("uploaded_by", "types_approved_by")
    deployments = _deployments().filter(model_version__model=model)
    return render(
        request,
        "deployments/model.html",
        {"model": model, "versions": versions, "deployments": deployments},
    )


@login_required
def model_upload(request: HttpRequest, name: str) -> HttpResponse:
    """Upload page. The upload script posts here with XMLHttpRequest (to show progress) and puts
    the returned fragment (the form with its errors, or the validation result) in place."""
    _require_deployer(request)
    model = get_object_or_404(RegisteredModel, name=name)
    version = None
    status = 200
    if request.method == "POST":
        # Reading the body streams the file to disk and hashes it (HashingUploadHandler); a
        # file over MAX_ARTIFACT_BYTES is dropped there and the request says why.
        form = UploadForm(request.POST, request.FILES)
        refusal = upload_refusal(request)
        if refusal:
            # The file and the fields after it were dropped: say why, not "this field is
            # required".
            form.is_valid()
            form.errors.clear()
            form.errors["file"] = form.error_class([f"Refused: {refusal}"])
        elif form.is_valid():
            try:
                version = upload_version(
                    model,
                    form.cleaned_data["file"],
                    model_type=form.cleaned_data["model_type"],
                    uploaded_by=request.user,
                    approve_types=form.cleaned_data["approve_types"],
                    sample=form.cleaned_data.get("sample"),
                )
            except ArtifactRejected as exc:
                form.add_error("file", f"Refused: {exc}")
            except StoreError as exc:
                form.add_error(None, f"The artifact store did not answer; try again. ({exc})")
            else:
                form = UploadForm()
        if form.errors:
            status = 422
    else:
        form = UploadForm()
    context = {"model": model, "form": form, "version": version}
    template = "deployments/partials/upload_area.html" if _is_fragment(request) else None
    return render(request, template or "deployments/upload.html", context, status=status)


# Creating deployments ---------------------------------------------------------------------


@login_required
def deployment_new(request: HttpRequest) -> HttpResponse:
    _require_deployer(request)
    initial = {"version": request.GET.get("version")}
    form = DeployForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            deployment = lifecycle.create_deployment(
                name=form.cleaned_data["name"],
                version=form.cleaned_data["version"],
                replicas=form.cleaned_data["replicas"],
                actor=request.user,
                **form.resources(),
            )
        except lifecycle.LifecycleError as exc:
            form.add_error("name", f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
        else:
            messages.success(request, f"Deploying {deployment.name}. Its status updates below.")
            return redirect("deployment-detail", name=deployment.name)
    status = 400 if form.errors else 200
    context = {"form": form, "has_versions": ModelVersion.objects.exists()}
    return render(request, "deployments/deploy.html", context, status=status)


@login_required
@require_GET
def deployment_name_check(request: HttpRequest) -> HttpResponse:
    """Checked as the user types (htmx): is this a valid and free deployment name?"""
    name = request.GET.get("name", "").strip()
    error = check_deployment_name(name) if name else ""
    return render(request, "deployments/partials/name_check.html", {"name": name, "error": error})


# One deployment -----------------------------------------------------------------------------


def _get_deployment(name: str) -> Deployment:
    return get_object_or_404(
        _deployments().select_related("previous_version", "created_by"), name=name
    )


def _state_key(deployment: Deployment) -> str:
    """What the action buttons depend on; the live fragment re-renders them when it changes."""
    return (
        f"{deployment.status}-{deployment.model_version_id}-"
        f"{deployment.previous_version_id or 0}-{deployment.replicas}"
    )


def _actions_context(
    deployment: Deployment,
    change_form: ChangeVersionForm | None = None,
    scale_form: ScaleForm | None = None,
) -> dict[str, Any]:
    busy = deployment.status in st.IN_FLIGHT
    return {
        "can_redeploy": deployment.status in st.DEPLOYABLE,
        "can_undeploy": deployment.status in st.UNDEPLOYABLE,
        "can_change": not busy,
        "change_form": change_form or ChangeVersionForm(deployment=deployment),
        "scale_form": scale_form or ScaleForm(initial={"replicas": deployment.replicas}),
        "version_count": deployment.model_version.model.versions.count(),
    }


def _predict_context(
    request: HttpRequest,
    deployment: Deployment,
    form: PredictForm | TabularPredictForm | None = None,
    result: PredictionResult | None = None,
    rows: list[Any] | None = None,
) -> dict[str, Any]:
    classes = None
    if result is not None and isinstance(result.body, dict):
        classes = result.body.get("classes")
    example = rows or presenters.example_rows(deployment)
    result_rows = presenters.result_rows(result, classes) if result else []
    return {
        "predict_form": form or _predict_form(deployment),
        "result": result,
        "result_classes": classes,
        "result_rows": result_rows,
        # A classifier without predict_proba (LinearSVC) answers labels only.
        "labels_only": bool(classes) and any("cells" not in r for r in result_rows),
        "result_error": result.error_text() if result and result.status_code != 200 else "",
        "is_classifier": deployment.model_version.model.job == CLASSIFICATION,
        "snippets": presenters.snippets(request, deployment, example),
        "tried": rows is not None,
    }


def _predict_form(deployment: Deployment, data: Any = None) -> PredictForm | TabularPredictForm:
    """The schema-built form for a tabular version, else one number per feature."""
    version = deployment.model_version
    if presenters.is_tabular(version):
        example = (version.example_rows or [None])[0]
        return TabularPredictForm(data, schema=version.input_schema, example=example)
    return PredictForm(data, feature_names=presenters.feature_names(deployment))


def _detail(
    request: HttpRequest,
    deployment: Deployment,
    status: int = 200,
    *,
    change_form: ChangeVersionForm | None = None,
    scale_form: ScaleForm | None = None,
    predict: dict[str, Any] | None = None,
) -> HttpResponse:
    context = {
        "deployment": deployment,
        "events": deployment.events.select_related("actor")[:50],
        "state_key": _state_key(deployment),
        **_actions_context(deployment, change_form, scale_form),
        **(predict or _predict_context(request, deployment)),
        **_logs_context(deployment),
    }
    return render(request, "deployments/deployment.html", context, status=status)


def _logs_context(deployment: Deployment) -> dict[str, Any]:
    return {"lines": deployment_logs(deployment, st.LOG_TAIL_DEFAULT), "tail": st.LOG_TAIL_DEFAULT}


@login_required
@require_GET
def deployment_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _detail(request, _get_deployment(name))


@login_required
@require_GET
def deployment_live_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """Status, reason and events, polled by htmx; the actions too when the state has moved."""
    deployment = _get_deployment(name)
    key = _state_key(deployment)
    context = {
        "deployment": deployment,
        "events": deployment.events.select_related("actor")[:50],
        "state_key": key,
        "oob": True,
        "state_changed": request.GET.get("seen") != key,
    }
    if context["state_changed"]:
        context.update(_actions_context(deployment))
    return render(request, "deployments/partials/deployment_live.html", context)


@login_required
@require_GET
def deployment_logs_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """The Logs panel, polled by htmx."""
    deployment = _get_deployment(name)
    context = {"deployment": deployment, **_logs_context(deployment)}
    return render(request, "deployments/partials/logs.html", context)


@login_required
@require_POST
def deployment_predict(request: HttpRequest, name: str) -> HttpResponse:
    """The test-prediction form: viewers may use it too."""
    deployment = _get_deployment(name)
    form = _predict_form(deployment, request.POST)
    result = rows = None
    if form.is_valid():
        rows = form.cleaned_data["matrix"]
        result = forward_prediction(deployment, rows)
    context = _predict_context(request, deployment, form, result, rows)
    if _is_fragment(request):
        # htmx swaps only 2xx answers; the errors are in the fragment, next to their fields.
        context["deployment"] = deployment
        return render(request, "deployments/partials/predict.html", context)
    status = 200 if form.is_valid() else 400
    return _detail(request, deployment, status=status, predict=context)


@login_required
@require_POST
def deployment_action(request: HttpRequest, name: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404(f"no action {action}")
    _require_deployer(request)
    deployment = _get_deployment(name)
    try:
        if action == "undeploy":
            lifecycle.undeploy(deployment, actor=request.user)
            done = "Undeploy requested: the serving processes are being stopped."
        elif action == "deploy":
            lifecycle.deploy(deployment, actor=request.user)
            done = "Deploy requested."
        elif action == "rollback":
            previous = deployment.previous_version
            lifecycle.rollback(deployment, actor=request.user)
            done = f"Rolling back to v{previous.version}." if previous else "Rolled back."
        elif action == "change":
            form = ChangeVersionForm(request.POST, deployment=deployment)
            if not form.is_valid():
                return _detail(request, deployment, status=400, change_form=form)
            version = form.cleaned_data["version"]
            lifecycle.change(deployment, version=version, actor=request.user)
            done = f"Changing to v{version.version}."
        else:
            form = ScaleForm(request.POST)
            if not form.is_valid():
                return _detail(request, deployment, status=400, scale_form=form)
            replicas = form.cleaned_data["replicas"]
            lifecycle.change(deployment, replicas=replicas, actor=request.user, action="scale")
            done = f"Scaling to {replicas} replica(s)."
    except lifecycle.LifecycleError as exc:
        messages.error(request, f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
    else:
        messages.success(request, done)
    return redirect("deployment-detail", name=name)
