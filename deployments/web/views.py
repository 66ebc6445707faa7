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
from django.core.paginator import Paginator
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from deployments import constants as st
from deployments import lifecycle
from deployments.artifacts.stores import StoreError
from deployments.constants import CLASSIFICATION
from deployments.filters import DeploymentFilter, ModelFilter
from deployments.logs import cached_logs
from deployments.models import Deployment, DriftReport, ModelVersion, RegisteredModel
from deployments.observability import metrics as observed_metrics
from deployments.observability import prediction_log
from deployments.predictions import PredictionResult, forward_prediction
from deployments.registry.aliases import VersionNotFound, find_version, remove_alias, set_alias
from deployments.registry.compare import compare_versions
from deployments.registry.errors import ArtifactRejected
from deployments.registry.metadata import describe_version
from deployments.registry.upload_handler import upload_refusal
from deployments.registry.versions import upload_version
from deployments.roles import can_deploy
from deployments.specs import log_sample, prediction_log_config, prediction_log_sink
from deployments.web import presenters
from deployments.web.forms import (
    AliasForm,
    ChangeVersionForm,
    DeployForm,
    DescribeVersionForm,
    LogSampleForm,
    ModelForm,
    PredictForm,
    ScaleForm,
    TabularPredictForm,
    UploadForm,
    check_deployment_name,
)
from deployments.web.lists import page_context

ACTIONS = ("deploy", "undeploy", "rollback", "change", "scale", "log-sample")
# Rows of the deployment page's prediction-log table, and deployments in the dashboard's
# Traffic panel.
PREDICTION_TABLE_ROWS = 10
SPARKLINE_DEPLOYMENTS = 100


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


def _dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """The visible page of the filtered deployments; the live refresh renders only it."""
    filterset = DeploymentFilter(request.GET, queryset=_deployments())
    context = page_context(request, filterset)
    context["deployments"] = context["rows"]
    return context


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "deployments/dashboard.html", _dashboard_context(request))


@login_required
@require_GET
def dashboard_fragment(request: HttpRequest) -> HttpResponse:
    return render(
        request, "deployments/partials/deployment_table.html", _dashboard_context(request)
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
    filterset = ModelFilter(
        request.GET,
        queryset=RegisteredModel.objects.annotate(
            latest=Max("versions__version"), version_count=Count("versions")
        ),
    )
    context = page_context(request, filterset)
    context.update({"models": context["rows"], "form": form})
    status = 400 if form.errors else 200
    return render(request, "deployments/models.html", context, status=status)


def _model_page(
    request: HttpRequest,
    model: RegisteredModel,
    *,
    alias_form: AliasForm | None = None,
    describe: tuple[int, DescribeVersionForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    versions = list(
        model.versions.select_related("uploaded_by", "types_approved_by").prefetch_related(
            "aliases"
        )
    )
    for v in versions:  # each version's notes-and-tags form; the one posted keeps its errors
        if describe and describe[0] == v.version:
            v.describe_form = describe[1]  # type: ignore[attr-defined]
        else:
            initial = {"notes": v.notes, "tags": ", ".join(v.tags)}
            v.describe_form = DescribeVersionForm(initial=initial)  # type: ignore[attr-defined]
    deployments = _deployments().filter(model_version__model=model)
    context = {
        "model": model,
        "versions": versions,
        "deployments": deployments,
        "aliases": model.aliases.select_related("version", "updated_by"),
        "alias_form": alias_form or AliasForm(model=model),
        "registry_events": model.events.all()[:10],
    }
    return render(request, "deployments/model.html", context, status=status)


@login_required
@require_GET
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _model_page(request, get_object_or_404(RegisteredModel, name=name))


@login_required
@require_POST
def model_alias(request: HttpRequest, name: str) -> HttpResponse:
    """Set or move an alias (or remove it, with `remove`); audited on the model."""
    _require_deployer(request)
    model = get_object_or_404(RegisteredModel, name=name)
    if request.POST.get("remove"):
        label = request.POST["remove"]
        if remove_alias(model, label, actor=request.user):
            messages.success(request, f"Alias {label} removed.")
        return redirect("model-detail", name=name)
    form = AliasForm(request.POST, model=model)
    if not form.is_valid():
        return _model_page(request, model, alias_form=form, status=400)
    alias = set_alias(model, form.cleaned_data["name"], form.cleaned_data["version"], request.user)
    messages.success(request, f"{alias.name} now points at v{alias.version.version}.")
    return redirect("model-detail", name=name)


@login_required
@require_POST
def model_version_describe(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """Save a version's notes and tags."""
    _require_deployer(request)
    target = get_object_or_404(ModelVersion, model__name=name, version=version)
    form = DescribeVersionForm(request.POST)
    if not form.is_valid():
        return _model_page(request, target.model, describe=(target.version, form), status=400)
    describe_version(target, actor=request.user, **form.cleaned_data)
    messages.success(request, f"Notes and tags of v{target.version} saved.")
    return redirect(f"{reverse('model-detail', args=[name])}#version-{target.version}")


@login_required
@require_GET
def model_compare(request: HttpRequest, name: str) -> HttpResponse:
    """Two versions side by side (?a=1&b=2, numbers or aliases)."""
    model = get_object_or_404(RegisteredModel, name=name)
    numbers = list(model.versions.values_list("version", flat=True))
    refs = {
        key: request.GET.get(key) or str(default)
        for key, default in (("a", numbers[1] if len(numbers) > 1 else ""), ("b", ""))
    }
    refs["b"] = refs["b"] or (str(numbers[0]) if numbers else "")
    chosen, errors = {}, {}
    for key, ref in refs.items():
        try:
            chosen[key] = find_version(model, ref)
        except VersionNotFound as exc:
            errors[key] = str(exc)
    rows = compare_versions(chosen["a"], chosen["b"]) if not errors else []
    context = {
        "model": model,
        "numbers": numbers,
        "a": chosen.get("a"),
        "b": chosen.get("b"),
        "refs": refs,
        "errors": errors,
        "rows": rows,
        "differences": sum(1 for r in rows if not r.same),
    }
    return render(request, "deployments/compare.html", context, status=400 if errors else 200)


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
                    notes=form.cleaned_data["notes"],
                    tags=form.cleaned_data["tags"],
                    metrics=form.cleaned_data["metrics"],
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
        f"{deployment.previous_version_id or 0}-{deployment.replicas}-"
        f"{int(deployment.archived_at is not None)}-{deployment.log_sample}"
    )


def _actions_context(
    deployment: Deployment,
    change_form: ChangeVersionForm | None = None,
    scale_form: ScaleForm | None = None,
    log_sample_form: LogSampleForm | None = None,
) -> dict[str, Any]:
    busy = deployment.status in st.IN_FLIGHT
    return {
        "can_redeploy": deployment.status in st.DEPLOYABLE,
        "can_undeploy": deployment.status in st.UNDEPLOYABLE,
        "can_change": not busy,
        "can_delete": deployment.status in st.DELETABLE,
        "change_form": change_form or ChangeVersionForm(deployment=deployment),
        "scale_form": scale_form or ScaleForm(initial={"replicas": deployment.replicas}),
        # Only where serving writes a log (locally, or to PREDICTION_LOG_SINK).
        "log_sample_form": (
            log_sample_form or LogSampleForm(initial={"log_sample": log_sample(deployment)})
        )
        if prediction_log_sink(deployment)
        else None,
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
        "token_lifetime": st.DEFAULT_TOKEN_LIFETIME,  # of the token the snippets offer
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
    log_sample_form: LogSampleForm | None = None,
    predict: dict[str, Any] | None = None,
) -> HttpResponse:
    context = {
        "deployment": deployment,
        **_timeline(deployment),
        "state_key": _state_key(deployment),
        **_actions_context(deployment, change_form, scale_form, log_sample_form),
        **(predict or _predict_context(request, deployment)),
        # The Logs panel fills itself in as soon as the page has loaded (a worker reads them).
        "lines": None,
        "logs_first": True,
        "tail": st.LOG_TAIL_DEFAULT,
        **_predictions_context(deployment),
        "windows": list(st.WINDOWS),
    }
    return render(request, "deployments/deployment.html", context, status=status)


def _timeline(deployment: Deployment) -> dict[str, Any]:
    """The latest actions of the deployment, grouped, for its page and the live fragment."""
    recent = list(deployment.events.select_related("actor")[: st.TIMELINE_RECENT_EVENTS])
    groups = presenters.group_events(recent)
    return {
        "event_groups": groups[: st.TIMELINE_ACTIONS_PER_PAGE],
        "more_history": len(groups) > st.TIMELINE_ACTIONS_PER_PAGE
        or len(recent) == st.TIMELINE_RECENT_EVENTS,
    }


def _predictions_context(deployment: Deployment) -> dict[str, Any]:
    config = prediction_log_config(deployment)
    context: dict[str, Any] = {"sample": config.sample if config else 0, "records": []}
    try:
        records = prediction_log.latest(deployment, PREDICTION_TABLE_ROWS)
    except prediction_log.LogUnavailable as exc:
        return {**context, "problem": str(exc)}
    context["records"] = [presenters.prediction_row(r) for r in records]
    return context


@login_required
@require_GET
def deployment_history(request: HttpRequest, name: str) -> HttpResponse:
    """Every action on the deployment, a page of actions at a time (not live)."""
    deployment = _get_deployment(name)
    events = list(deployment.events.select_related("actor")[: st.TIMELINE_HISTORY_EVENTS])
    pages = Paginator(presenters.group_events(events), st.TIMELINE_ACTIONS_PER_PAGE)
    page = pages.get_page(request.GET.get("page"))
    context = {"deployment": deployment, "page": page, "event_groups": page.object_list}
    return render(request, "deployments/history.html", context)


@login_required
@require_GET
def deployment_predictions_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """The prediction-log table, polled by htmx."""
    deployment = _get_deployment(name)
    context = {"deployment": deployment, **_predictions_context(deployment)}
    return render(request, "deployments/partials/predictions.html", context)


@login_required
@require_GET
def dashboard_sparklines(request: HttpRequest) -> JsonResponse:
    """The dashboard's Traffic panel: requests per second of each running deployment over
    the last hour and the features of its last drift report that drifted (a small JSON
    document of its own, so the deployments table stays as cheap as it was)."""
    running = list(
        Deployment.objects.filter(status__in=(st.RUNNING, st.DEGRADED)).order_by("name")[
            :SPARKLINE_DEPLOYMENTS
        ]
    )
    lines = observed_metrics.sparklines(running, st.WINDOWS["1h"])
    drifted = dict(
        DriftReport.objects.filter(deployment__in=running).values_list(
            "deployment__name", "drifted"
        )
    )
    return JsonResponse(
        {
            "deployments": [
                {
                    "name": d.name,
                    "requests_per_s": lines[d.name],
                    "drifted": drifted.get(d.name, []),
                }
                for d in running
            ]
        }
    )


def _logs_context(deployment: Deployment) -> dict[str, Any]:
    return {"lines": cached_logs(deployment, st.LOG_TAIL_DEFAULT), "tail": st.LOG_TAIL_DEFAULT}


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
        **_timeline(deployment),
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
        elif action == "scale":
            form = ScaleForm(request.POST)
            if not form.is_valid():
                return _detail(request, deployment, status=400, scale_form=form)
            replicas = form.cleaned_data["replicas"]
            lifecycle.change(deployment, replicas=replicas, actor=request.user, action="scale")
            done = f"Scaling to {replicas} replica(s)."
        else:
            sample_form = LogSampleForm(request.POST)
            if not sample_form.is_valid():
                return _detail(request, deployment, status=400, log_sample_form=sample_form)
            sample = sample_form.cleaned_data["log_sample"]
            lifecycle.change(deployment, log_sample=sample, actor=request.user)
            done = f"Logging {sample:.0%} of predictions from the next rollout on."
    except lifecycle.LifecycleError as exc:
        messages.error(request, f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
    else:
        messages.success(request, done)
    return redirect("deployment-detail", name=name)
