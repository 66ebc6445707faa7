"""The bad-input catalogue: what a user can get wrong on the console's forms and API, and the
exact sentence each case reads. Every message names the field and says what to do; none is a
Python exception, an internal name or a paragraph about DNS labels.

Forms go through Django's test client (the views, forms and templates a browser gets), the API
through REST framework's client; uploads run the real sandbox on real files."""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from deployments import constants as st
from deployments.models import ModelVersion, RegisteredModel
from deployments.registry.errors import ArtifactRejected
from deployments.registry.refusals import load_refusal
from deployments.registry.sandbox import ArtifactReport, _unservable_message
from deployments.registry.versions import _take_input_size

pytestmark = pytest.mark.django_db

NAME_HINT = 'Use lowercase letters, digits and dashes, starting with a letter, e.g. "{}".'
# What a page or an answer must never show.
RAW = re.compile(
    r"Traceback|Error:|Exception|KeyError|BadZipFile|input_size|DNS-1123|RegisteredModel|"
    r"ModelVersion|Registered model with|This field is required|Ensure this value|"
    r"Select a valid choice|A valid integer"
)


@pytest.fixture
def admin(db: None) -> User:
    return User.objects.create(username="admin", is_superuser=True)


@pytest.fixture
def browser(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def api(admin: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin)
    return client


def field_errors(page: bytes, field: str) -> list[str]:
    """The errors a form page shows under `field` (partials/field.html)."""
    text = page.decode()
    block = re.search(rf'id="field-{field}".*?</div>', text, re.S)
    assert block, f"no field {field} on the page"
    found = re.findall(r'<small[^>]*class="field-error"[^>]*>(.*?)</small>', block.group(0), re.S)
    return [html.unescape(e).strip() for e in found]


def assert_plain(text: str) -> None:
    assert not RAW.search(text), text


# The models form ---------------------------------------------------------------------------------

MODEL_FORM_CASES = [
    ("capital letters", {"name": "Iris"}, "name", NAME_HINT.format("iris")),
    ("spaces", {"name": "Iris Model"}, "name", NAME_HINT.format("iris-model")),
    ("underscore", {"name": "iris_v2"}, "name", NAME_HINT.format("iris-v2")),
    ("starts with a digit", {"name": "1iris"}, "name", NAME_HINT.format("iris")),
    ("no name", {"name": ""}, "name", "Enter a name."),
    (
        "too long",
        {"name": "a" * 64},
        "name",
        "Use at most 63 characters (this name has 64).",
    ),
    ("no job", {"job": ""}, "job", "Choose classification or regression."),
    ("unknown job", {"job": "clustering"}, "job", "Choose classification or regression."),
    ("zero features", {"input_size": "0"}, "input_size", st.FEATURES_MESSAGE),
    ("too many features", {"input_size": "10001"}, "input_size", st.FEATURES_MESSAGE),
    ("features not a number", {"input_size": "four"}, "input_size", st.FEATURES_INVALID),
]


@pytest.mark.parametrize(
    ("case", "changes", "field", "message"), MODEL_FORM_CASES, ids=[c[0] for c in MODEL_FORM_CASES]
)
def test_the_models_form_says_what_to_fix(
    browser: Client, case: str, changes: dict, field: str, message: str
) -> None:
    data = {"name": "iris", "job": st.CLASSIFICATION, "input_size": "4", **changes}
    response = browser.post("/models/", data)
    assert response.status_code == 400
    assert field_errors(response.content, field) == [message]
    assert_plain(" ".join(field_errors(response.content, field)))


def test_a_taken_model_name_says_what_to_do_instead(browser: Client, api: APIClient) -> None:
    RegisteredModel.objects.create(name="iris", job=st.CLASSIFICATION, input_size=4)
    response = browser.post(
        "/models/", {"name": "iris", "job": st.CLASSIFICATION, "input_size": "4"}
    )
    assert field_errors(response.content, "name") == [
        "A model named iris already exists. Choose another name, or open iris and upload a "
        "new version of it."
    ]
    answer = api.post(
        "/api/models/", {"name": "iris", "job": "classification", "input_size": 4}, format="json"
    )
    assert answer.json() == {
        "name": [
            "A model with this name already exists. Choose another name, or upload a new "
            "version of that model."
        ]
    }


# Deploying and scaling --------------------------------------------------------------------------


def test_replicas_read_the_same_on_both_forms_and_the_api(
    browser: Client, api: APIClient, make_deployment: Callable[..., object]
) -> None:
    deployment = make_deployment(status=st.RUNNING)
    version = ModelVersion.objects.get()
    deploy = browser.post(
        "/deploy/",
        {"name": "iris-two", "version": version.pk, "replicas": "100", **st.DEFAULT_RESOURCES},
    )
    scale = browser.post(f"/deployments/{deployment.name}/scale/", {"replicas": "100"})
    assert scale.status_code == 400
    api_create = api.post(
        "/api/deployments/", {"name": "iris-two", "model": "iris", "replicas": 100}, format="json"
    )
    api_patch = api.patch(f"/api/deployments/{deployment.name}/", {"replicas": 100}, format="json")
    assert field_errors(deploy.content, "replicas") == [st.REPLICAS_MESSAGE]
    assert f'<small class="field-error">{st.REPLICAS_MESSAGE}</small>' in scale.content.decode()
    assert api_create.json() == {"replicas": [st.REPLICAS_MESSAGE]}
    assert api_patch.json() == {"replicas": [st.REPLICAS_MESSAGE]}
    assert st.REPLICAS_MESSAGE == "Use 0 to 50 replicas."


def test_a_log_sample_out_of_range_or_with_traffic_is_refused(
    api: APIClient, make_deployment: Callable[..., object]
) -> None:
    deployment = make_deployment(status=st.RUNNING)
    url = f"/api/deployments/{deployment.name}/"
    too_big = api.patch(url, {"log_sample": 2}, format="json")
    assert too_big.status_code == 400
    assert too_big.json() == {"log_sample": [st.LOG_SAMPLE_MESSAGE]}
    with_traffic = api.patch(url, {"log_sample": 0.5, "shadow": None}, format="json")
    assert with_traffic.status_code == 400
    assert "not with version, replicas or log_sample" in with_traffic.json()["canary"][0]
    accepted = api.patch(url, {"log_sample": 0.25}, format="json")
    assert accepted.status_code == 202, accepted.content
    assert accepted.json()["log_sample"] == 0.25


def test_the_log_sample_form_sets_the_share_or_says_what_is_wrong(
    browser: Client, make_deployment: Callable[..., object], settings
) -> None:
    deployment = make_deployment(status=st.RUNNING)
    page = browser.get(f"/deployments/{deployment.name}/").content.decode()
    field = re.search(r'<input type="number" name="log_sample"[^>]*>', page)
    assert field, "no log sample field on a local deployment's page"
    assert f'value="{settings.PREDICTION_LOG_SAMPLE}"' in field.group(0)  # the default in force
    for bad in ("2", "-0.5", "lots", ""):
        refused = browser.post(f"/deployments/{deployment.name}/log-sample/", {"log_sample": bad})
        assert refused.status_code == 400, bad
        assert (
            f'<small class="field-error">{st.LOG_SAMPLE_MESSAGE}</small>'
            in refused.content.decode()
        )
    done = browser.post(
        f"/deployments/{deployment.name}/log-sample/", {"log_sample": "0.1"}, follow=True
    )
    assert "Logging 10% of predictions from the next rollout on." in done.content.decode()
    deployment.refresh_from_db()
    assert (deployment.log_sample, deployment.status) == (0.1, st.PENDING)
    settings.DEPLOY_RUNTIME, settings.PREDICTION_LOG_SINK = "kubernetes", ""  # no log anywhere
    deployment.status = st.RUNNING
    deployment.save()
    assert (
        'name="log_sample"' not in browser.get(f"/deployments/{deployment.name}/").content.decode()
    )


DEPLOY_FORM_CASES = [
    ("capital letters", {"name": "Iris"}, "name", NAME_HINT.format("iris")),
    ("no version", {"version": ""}, "version", "Choose a model version."),
    ("unknown version", {"version": "999"}, "version", "Choose one of the listed model versions."),
    ("replicas not a number", {"replicas": "two"}, "replicas", st.REPLICAS_INVALID),
    ("negative replicas", {"replicas": "-1"}, "replicas", st.REPLICAS_MESSAGE),
    ("bad quantity", {"cpu_request": "lots"}, "cpu_request", st.QUANTITY_MESSAGE),
]


@pytest.mark.parametrize(
    ("case", "changes", "field", "message"),
    DEPLOY_FORM_CASES,
    ids=[c[0] for c in DEPLOY_FORM_CASES],
)
def test_the_deploy_form_says_what_to_fix(
    browser: Client,
    make_version: Callable[..., ModelVersion],
    case: str,
    changes: dict,
    field: str,
    message: str,
) -> None:
    version = make_version()
    data = {"name": "iris-prod", "version": str(version.pk), "replicas": "1"}
    response = browser.post("/deploy/", {**data, **st.DEFAULT_RESOURCES, **changes})
    assert response.status_code == 400
    assert field_errors(response.content, field) == [message]


def test_the_live_name_check_suggests_a_name(browser: Client) -> None:
    response = browser.get("/deploy/check-name/", {"name": "Iris Prod"})
    assert NAME_HINT.format("iris-prod") in html.unescape(response.content.decode())


API_CASES = [
    ("name", {"name": "Iris"}, {"name": [NAME_HINT.format("iris")]}),
    ("unknown model", {"model": "nope"}, {"model": ["no model named 'nope'"]}),
    (
        "unknown version",
        {"version": 9},
        {"version": ["iris has no version 9. Use a version number (1)."]},
    ),
    (
        "unknown alias",
        {"version": "champion"},
        {"version": ['iris has no version or alias "champion". Use a version number (1).']},
    ),
    (
        "version not a number",
        {"version": 1.5},
        {"version": ['Give a version number such as 2, or an alias such as "champion".']},
    ),
    ("replicas", {"replicas": "many"}, {"replicas": [st.REPLICAS_INVALID]}),
]


@pytest.mark.parametrize(("case", "changes", "errors"), API_CASES, ids=[c[0] for c in API_CASES])
def test_the_api_says_what_to_fix(
    api: APIClient,
    make_version: Callable[..., ModelVersion],
    case: str,
    changes: dict,
    errors: dict,
) -> None:
    make_version()
    body = {"name": "iris-prod", "model": "iris", **changes}
    response = api.post("/api/deployments/", body, format="json")
    assert response.status_code == 400
    assert response.json() == errors


def test_api_lookups_name_what_is_missing(
    api: APIClient, make_version: Callable[..., ModelVersion]
) -> None:
    make_version()
    assert api.get("/api/models/nope/").json() == {"detail": "No model named 'nope'."}
    assert api.get("/api/models/nope/versions/").json() == {"detail": "No model named 'nope'."}
    assert api.get("/api/models/iris/versions/7/").json() == {"detail": "iris has no version '7'."}


# Uploads ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files of each kind a user may pick: only their first bytes decide the words, so they
    are small stand-ins written with the formats' own writers (a skops file is a zip archive
    with a schema.json), not fitted models."""
    tmp_path = tmp_path_factory.mktemp("files")
    text = tmp_path / "notes.joblib"
    text.write_text("key,value\n1,2\n")
    whole = tmp_path / "model.joblib"
    joblib.dump({"coef": np.zeros(20)}, whole)
    cut = tmp_path / "cut.joblib"
    cut.write_bytes(whole.read_bytes()[:40])
    skops = tmp_path / "model.skops"
    with zipfile.ZipFile(skops, "w") as archive:
        archive.writestr("schema.json", "{}")
    return {"text": text, "joblib": whole, "skops": skops, "cut": cut}


# What the loader said (in the sandbox's report) for each mistake, and what the uploader
# reads instead. The sandbox itself takes seconds per file, so it runs elsewhere: the first case
# in tests/bad_input/test_uploads.py, the second in the browser test of the upload form.
LOADER_CASES = [
    (
        "text",
        "joblib",
        "KeyError: 107",
        "This is not a joblib file: it does not start the way files saved with joblib.dump "
        "do. Choose the file you saved the model to, and the format it was saved with "
        "(joblib, pickle or skops).",
    ),
    (
        "joblib",
        "skops",
        "zipfile.BadZipFile: File is not a zip file",
        "This is not a skops file: it looks like a file saved with joblib or pickle. "
        'Choose the format "joblib" (for joblib.dump) or "pickle" (for pickle.dump).',
    ),
    (
        "skops",
        "joblib",
        "UnpicklingError: persistent IDs in protocol 0 must be ASCII strings",
        'This looks like a skops file (a zip archive). Choose the format "skops".',
    ),
    (
        "cut",
        "joblib",
        "EOFError: EOFError",
        "This joblib file could not be read: it may be cut short or damaged, or saved "
        "with another format. Upload it again, or choose the format it was saved with "
        "(joblib, pickle or skops).",
    ),
    (
        "joblib",
        "joblib",
        "ValueError: the scaler's state is inconsistent",
        "Loading the model ran code it holds, and that code failed, saying \"the scaler's state "
        'is inconsistent". Fix the code the model was saved with, save it again and upload the '
        "new file.",
    ),
    (
        "text",
        "pkl",
        "UnpicklingError: invalid load key, 'k'.",
        "This is not a pickle file: it does not start the way files saved with pickle.dump "
        "do. Choose the file you saved the model to, and the format it was saved with "
        "(joblib, pickle or skops).",
    ),
    (
        "joblib",
        "joblib",
        "ModuleNotFoundError: No module named 'xgboost'",
        "The model needs the Python module xgboost, which is not installed where models are "
        "validated and served. Save a model built from scikit-learn (and the libraries the "
        "console lists), or ask an operator to add the module.",
    ),
]


@pytest.mark.parametrize(("file", "model_type", "raw", "message"), LOADER_CASES)
def test_loader_errors_become_plain_words(
    files: dict[str, Path], file: str, model_type: str, raw: str, message: str
) -> None:
    error = f"the artifact could not be loaded: {raw}"
    assert load_refusal(files[file], model_type, error) == message
    assert_plain(message)


def test_a_wrong_feature_count_reads_in_features() -> None:
    unservable = {"reason": "n_features", "error": "inputSize is 7 but the model was trained on 4"}
    assert _unservable_message(unservable, "sklearn.linear_model.LogisticRegression", 4, 7) == (
        "The file's LogisticRegression takes 4 features, but this model is registered "
        "with 7 features. Upload a model trained on 7 features, or register a new model with 4."
    )


def test_a_file_that_does_not_say_its_width_reads_what_to_give() -> None:
    message = _unservable_message(
        {"reason": "width_unknown"}, "catboost.core.CatBoostClassifier", None, None
    )
    assert message == (
        "The file's CatBoostClassifier does not say how many features it takes (neither "
        "n_features_in_ nor feature_names_in_ gives it), and this model was registered without "
        "a number of features. Upload a sample CSV with the version (field sample: a header "
        "naming the columns and a few real rows), or register the model with its number of "
        "features."
    )
    assert_plain(message)


def test_of_two_first_uploads_of_different_widths_the_second_reads_the_count_refusal() -> None:
    model = RegisteredModel.objects.create(name="iris", job=st.CLASSIFICATION)
    stale = RegisteredModel.objects.get(pk=model.pk)  # read before the other upload finished
    report = ArtifactReport(
        estimator_class="sklearn.linear_model._logistic.LogisticRegression",
        input_size=3,
        n_features=3,
        feature_names=None,
        classes=[0, 1],
        library_versions={},
    )
    assert model.learn_input_size(4) == 4
    with pytest.raises(ArtifactRejected) as refused:
        _take_input_size(stale, report)
    assert str(refused.value) == (
        "The file's LogisticRegression takes 3 features, but this model is registered with 4 "
        "features. Upload a model trained on 4 features, or register a new model with 3."
    )
    assert RegisteredModel.objects.get(pk=model.pk).input_size == 4
    assert model.learn_input_size(3) == 4  # set once: the conditional update changes nothing


def test_a_model_registered_without_its_width_reads_plainly(
    browser: Client, api: APIClient
) -> None:
    response = browser.post("/models/", {"name": "iris", "job": st.CLASSIFICATION})
    assert response.status_code == 302
    answer = api.post("/api/models/", {"name": "wide", "job": "regression"}, format="json")
    assert answer.status_code == 201 and answer.json()["input_size"] is None
    model_page = browser.get("/models/iris/").content.decode()
    assert "Classification, the number of features comes from its first version." in model_page
    upload_page = browser.get("/models/iris/upload/").content.decode()
    assert "its number of features comes from this first version" in upload_page
    assert "upload a sample CSV with it" in upload_page
    assert 'data-label="Features">—<' in browser.get("/models/").content.decode()


UPLOAD_FORM_CASES = [
    ("no file", {}, "file", st.NO_FILE_MESSAGE),
    ("empty file", {"file": b""}, "file", st.EMPTY_FILE_MESSAGE),
    (
        "metrics not JSON",
        {"metrics": "auc=0.9"},
        "metrics",
        f"Metrics must be a JSON object such as {st.METRICS_EXAMPLE}; this is not valid JSON.",
    ),
    (
        "nested metrics",
        {"metrics": '{"auc": [0.9]}'},
        "metrics",
        'Metric "auc" must be a number or a short text, not a list; metrics are one flat '
        f"object such as {st.METRICS_EXAMPLE}.",
    ),
    (
        "bad tag",
        {"tags": "Best!"},
        "tags",
        '"Best!" cannot be used. Use up to 32 lowercase letters, digits and dashes, starting '
        'with a letter, e.g. "champion" or "staging". For example "best".',
    ),
]


@pytest.mark.parametrize(
    ("case", "data", "field", "message"), UPLOAD_FORM_CASES, ids=[c[0] for c in UPLOAD_FORM_CASES]
)
def test_the_upload_form_says_what_to_fix(
    browser: Client, case: str, data: dict, field: str, message: str
) -> None:
    RegisteredModel.objects.create(name="iris", job=st.CLASSIFICATION, input_size=4)
    body: dict[str, object] = {"model_type": "joblib", **data}
    if "file" in data:
        body["file"] = SimpleUploadedFile("m.joblib", data["file"])
    response = browser.post(
        "/models/iris/upload/", body, headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert response.status_code == 422
    assert field_errors(response.content, field) == [message]


def test_the_upload_api_says_what_to_fix(api: APIClient) -> None:
    RegisteredModel.objects.create(name="iris", job=st.CLASSIFICATION, input_size=4)
    no_file = api.post("/api/models/iris/versions/", {"model_type": "joblib"}, format="multipart")
    assert no_file.json() == {"file": [st.NO_FILE_MESSAGE]}
    wrong_format = api.post(
        "/api/models/iris/versions/",
        {"model_type": "onnx", "metrics": "[1]"},
        format="multipart",
    )
    assert wrong_format.json() == {
        "file": [st.NO_FILE_MESSAGE],
        "model_type": [st.MODEL_TYPE_MESSAGE],
        "metrics": [f"Metrics must be a JSON object such as {st.METRICS_EXAMPLE}."],
    }


# Pages ------------------------------------------------------------------------------------------


def test_missing_and_forbidden_pages_are_the_consoles_own(browser: Client, admin: User) -> None:
    missing = browser.get("/models/nope/")
    assert missing.status_code == 404
    page = missing.content.decode()
    assert 'id="error-page" data-status="404"' in page
    assert "There is nothing at <code>/models/nope/</code>" in page
    assert "RegisteredModel" not in page
    viewer = Client()
    viewer.force_login(User.objects.create(username="viewer"))
    forbidden = viewer.get("/deploy/")
    assert forbidden.status_code == 403
    assert 'data-status="403"' in forbidden.content.decode()
    assert "You need the deployer role for this action." in forbidden.content.decode()
