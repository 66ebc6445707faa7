"""The console in a real browser: Debian's Chromium driven by Playwright against a live console
(gunicorn, a real Celery worker, the local runtime starting real serving processes)."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import expect

from deployments import constants as st
from tests.support.api import create_model, upload, wait_for_status
from tests.support.browser import PHONE, log_in
from tests.support.models import diabetes_regressor, iris_classifier, save

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    # v1 carries feature names but is called with plain arrays, as serving does.
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
RUNNING_TIMEOUT = 150_000


def _table(page) -> np.ndarray:
    """The probabilities shown in the prediction table, at full precision (data-value)."""
    rows = page.locator("#prediction-table tbody tr")
    return np.array(
        [
            [
                float(v)
                for v in row.locator("td.prob").evaluate_all("els => els.map(e => e.dataset.value)")
            ]
            for row in rows.all()
        ]
    )


def _wait_status(page, status: str) -> None:
    """Wait for `status` (or `failed`, which ends the wait with its reason) without reloading."""
    page.locator(f'#status[data-status="{status}"], #status[data-status="failed"]').wait_for(
        timeout=RUNNING_TIMEOUT
    )
    shown = page.locator("#status").get_attribute("data-status")
    if shown != status:
        reason = page.locator("#reason").inner_text() if page.locator("#reason").count() else ""
        raise AssertionError(f"the deployment is {shown}, not {status}: {reason}")


def _submit_prediction(page, wait_for: str = "#prediction") -> None:
    """Press Predict and wait until htmx has swapped in the new answer."""
    page.evaluate("document.getElementById('predict').dataset.stale = 'yes'")
    page.get_by_role("button", name="Predict").click()
    page.locator(f"#predict:not([data-stale]) {wait_for}").wait_for()


def _predict_rows(page, rows: np.ndarray) -> None:
    details = page.locator("#rows-details")
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    page.get_by_label("Rows (CSV or JSON)").fill(json.dumps(rows.tolist()))
    _submit_prediction(page, "#prediction-table")


def test_deployer_uploads_deploys_predicts_changes_rolls_back_and_undeploys(visit, tmp_path):
    v1, X = iris_classifier()
    v1.feature_names_in_ = np.array(FEATURES, dtype=object)
    v2 = type(v1)(C=0.05, max_iter=1000).fit(X, v1.predict(X))
    v2.padding_ = np.random.default_rng(0).random(60_000)  # ~0.5 MB, to watch the progress
    art1 = save(v1, tmp_path / "iris-v1.joblib", "joblib")
    art2 = save(v2, tmp_path / "iris-v2.joblib", "joblib")
    junk = tmp_path / "notes.joblib"
    junk.write_bytes(b"this is not a model\n" * 100)

    me = visit(None)
    page = me.page
    response = page.goto(f"{me.console_url}/")
    page.wait_for_url("**/accounts/login/**")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    me.screenshot("01-login")
    page.get_by_label("Username").fill("deployer")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    page.locator(".form-errors").wait_for()
    page.get_by_label("Password").fill("deployer-password-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{me.console_url}/")
    assert "deployer" in page.get_by_test_id("who").inner_text()
    me.screenshot("02-dashboard-at-start")  # the empty state when this runs first

    # Register a model; a bad name is explained next to the field.
    me.goto("/models/")
    page.get_by_label("Name").fill("Iris UI")
    register = page.locator("form", has=page.get_by_role("button", name="Register model"))
    register.get_by_label("Job").select_option("classification")  # (the list has a Job filter)
    page.get_by_label("Number of features").fill("4")
    page.get_by_role("button", name="Register model").click()
    page.locator("#field-name .field-error").wait_for()
    assert 'e.g. "iris-ui"' in page.locator("#field-name .field-error").inner_text()
    page.get_by_label("Name").fill("iris-ui")
    page.get_by_role("button", name="Register model").click()
    page.wait_for_url("**/models/iris-ui/upload/")

    # A file that is not a model is refused, with the reason next to the file field.
    page.get_by_label("Model file").set_input_files(str(junk))
    page.get_by_role("button", name="Upload and validate").click()
    page.locator("#upload-result.refused").wait_for(timeout=60_000)
    assert "Refused" in page.locator("#field-file .field-error").inner_text()
    assert page.locator("#upload-progress").get_attribute("data-state") == "refused"
    me.screenshot("03-upload-refused")

    # A real model: the progress bar fills, then the validation result is shown.
    page.get_by_label("Model file").set_input_files(str(art1))
    page.get_by_role("button", name="Upload and validate").click()
    page.locator("#upload-result.ok").wait_for(timeout=60_000)
    bar = page.locator("#upload-progress-bar")
    assert bar.evaluate("b => [b.value, b.max]") == [100, 100]
    assert "validated" in page.locator("#upload-progress-label").inner_text()
    result = page.locator("#upload-result")
    assert "Version 1 of iris-ui" in result.inner_text()
    assert hashlib.sha256(art1.read_bytes()).hexdigest() in result.inner_text()
    assert "0, 1, 2" in result.inner_text()
    assert "scikit-learn" in result.inner_text()
    me.screenshot("04-upload-validated")
    # A slow link (Chromium's network throttling) shows the bar moving.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": 200_000})
    page.get_by_label("Model file").set_input_files(str(art2))
    page.get_by_role("button", name="Upload and validate").click()
    page.wait_for_function(
        "() => { const b = document.getElementById('upload-progress-bar');"
        " return b.value > 0 && b.value < 100; }"
    )
    assert "Uploading…" in page.locator("#upload-progress-label").inner_text()
    me.screenshot("04a-upload-progress", full_page=False)
    page.locator("#upload-result.ok", has_text="Version 2").wait_for(timeout=60_000)
    cdp.send("Network.emulateNetworkConditions", {**conditions, "uploadThroughput": -1})

    me.goto("/models/iris-ui/")
    assert page.locator("article.version").count() == 2
    me.screenshot("05-model")
    me.goto("/models/")
    me.screenshot("02b-models")

    # Deploy v1; the name is checked as it is typed.
    me.goto("/models/iris-ui/")
    page.get_by_role("button", name="Deploy v1").click()
    page.wait_for_url("**/deploy/?version=*")
    name = page.get_by_label("Deployment name")
    name.press_sequentially("Iris_UI", delay=20)
    page.locator('#name-check[data-valid="false"]').wait_for()
    assert 'e.g. "iris-ui"' in page.locator("#name-check").inner_text()
    expect(name).to_have_attribute("aria-invalid", "true")
    name.fill("")
    name.press_sequentially("iris-ui-prod", delay=20)
    page.locator('#name-check[data-valid="true"]').wait_for()
    assert "iris-ui v1" in page.get_by_label("Model version").locator("option:checked").inner_text()
    page.wait_for_timeout(300)  # let the field's colour transition finish for the picture
    me.screenshot("06-deploy-form")
    page.get_by_role("button", name="Deploy").click()
    page.wait_for_url("**/deployments/iris-ui-prod/")

    # The status turns running while the page stays loaded (htmx polls a fragment).
    page.evaluate("window.notReloaded = true")
    _wait_status(page, "running")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#endpoint code").inner_text().startswith("http://127.0.0.1:")
    assert page.locator("#actions #undeploy-button").is_visible()

    # One row through the per-feature inputs (named after the model's features).
    rows = X[::30]
    for feature, value in zip(FEATURES, X[0], strict=True):
        page.get_by_label(feature, exact=True).fill(str(value))
    _submit_prediction(page, "#prediction-table")
    np.testing.assert_allclose(_table(page), v1.predict_proba(X[:1]), rtol=0, atol=1e-9)

    # Several rows as JSON: the table equals scikit-learn's probabilities.
    _predict_rows(page, rows)
    expected = v1.predict_proba(rows)
    shown = _table(page)
    np.testing.assert_allclose(shown, expected, rtol=0, atol=1e-9)
    texts = page.locator("#prediction-table td.prob").all_inner_texts()
    assert texts == [f"{p:.4f}" for p in expected.ravel()]
    best = page.locator("#prediction-table td.best")
    assert best.count() == len(rows)
    labels = page.locator("#prediction-table td.label").all_inner_texts()
    assert labels == [str(c) for c in v1.classes_[expected.argmax(axis=1)]]
    assert page.locator("th.class-label").all_inner_texts() == ["0", "1", "2"]
    assert "ms" in page.locator("#latency").inner_text()
    me.screenshot("07-deployment-prediction")

    # The Python snippet is the same request: run it.
    snippet = page.locator("#snippet-python").inner_text()
    out = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=True
    )
    np.testing.assert_allclose(
        np.array(ast.literal_eval(out.stdout)["predictions"]), expected, rtol=0, atol=1e-9
    )
    curl = page.locator("#snippet-curl").inner_text()
    assert curl.startswith("curl") and json.dumps({"instances": rows.tolist()}) in curl
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator('button[data-copy="snippet-curl"]').click()
    assert page.evaluate("navigator.clipboard.readText()") == curl

    # Bad rows are explained next to the field, not sent.
    page.get_by_label("Rows (CSV or JSON)").fill("1, 2, 3")
    _submit_prediction(page, "#field-rows .field-error")
    assert "this model takes 4 features" in page.locator("#field-rows .field-error").inner_text()

    # The name is now taken.
    me.goto("/deploy/")
    page.get_by_label("Deployment name").press_sequentially("iris-ui-prod", delay=10)
    page.locator('#name-check[data-valid="false"]').wait_for()
    assert "already exists" in page.locator("#name-check").inner_text()
    picker = page.get_by_label("Model version")
    picker.select_option(
        picker.locator("option", has_text=re.compile(r"^iris-ui v1\b")).get_attribute("value")
    )
    page.get_by_role("button", name="Deploy").click()
    page.locator("#field-name .field-error").wait_for()
    assert "already exists" in page.locator("#field-name .field-error").inner_text()

    # Change to v2, then roll back to v1: each time the answers are that version's.
    me.goto("/deployments/iris-ui-prod/")
    change = page.get_by_label("Change version")
    change.select_option(
        change.locator("option", has_text=re.compile(r"^v2\b")).get_attribute("value")
    )
    page.locator("#change-button").click()
    page.wait_for_url("**/deployments/iris-ui-prod/")
    page.locator("#current-version", has_text="v2").wait_for()
    _wait_status(page, "running")
    _predict_rows(page, rows)
    np.testing.assert_allclose(_table(page), v2.predict_proba(rows), rtol=0, atol=1e-9)

    page.locator("#rollback-button", has_text="Roll back to v1").click()
    page.wait_for_url("**/deployments/iris-ui-prod/")
    page.locator("#current-version", has_text="v1").wait_for()
    _wait_status(page, "running")
    _predict_rows(page, rows)
    np.testing.assert_allclose(_table(page), v1.predict_proba(rows), rtol=0, atol=1e-9)

    # A replica count out of range is explained next to the field (the bounds are the rule's).
    assert page.get_by_label("Scale (replicas)").get_attribute("max") == str(st.MAX_REPLICAS)
    page.get_by_label("Scale (replicas)").fill("99")
    page.locator("#scale-button").click()
    page.locator("#actions .field-error").wait_for()
    assert "Use 0 to 50 replicas." in page.locator("#actions .field-error").inner_text()

    # Scale down asks first; cancelling keeps it as it is.
    page.get_by_label("Scale (replicas)").fill("0")
    page.locator("#scale-button").click()
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for()
    assert "Scale iris-ui-prod down?" in dialog.inner_text()
    page.locator("#confirm-cancel").click()
    assert not dialog.is_visible()
    assert page.locator("#replicas").inner_text() == "1/1"

    me.goto("/")
    page.locator('tr[data-deployment="iris-ui-prod"] [data-status="running"]').wait_for()
    me.screenshot("08-dashboard")

    # Undeploy asks for confirmation, then the status becomes stopped without reloading.
    me.goto("/deployments/iris-ui-prod/")
    page.locator("#undeploy-button").click()
    dialog.wait_for()
    assert "Undeploy iris-ui-prod?" in dialog.inner_text()
    me.screenshot("09-confirm-undeploy", full_page=False)
    page.locator("#confirm-ok").click()
    page.wait_for_url("**/deployments/iris-ui-prod/")
    page.locator("#status").wait_for()
    # The dashboard follows it to stopped without reloading.
    me.goto("/")
    page.evaluate("window.notReloaded = true")
    page.locator('tr[data-deployment="iris-ui-prod"] [data-status="stopped"]').wait_for(
        timeout=RUNNING_TIMEOUT
    )
    assert page.evaluate("window.notReloaded") is True
    me.goto("/deployments/iris-ui-prod/")
    page.locator("#redeploy-button", has_text="Deploy again").wait_for()
    events = page.locator("#events").inner_text()
    for action in ("create", "update", "rollback", "undeploy", "stopped"):
        assert action in events
    assert "by deployer" in events
    me.screenshot("10-deployment-stopped")

    # The login page, whatever else the old page's polling did meanwhile (waiting for the URL's
    # "load" event timed out once on a busy machine after the page had arrived).
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    assert "/accounts/login/" in page.url


@pytest.fixture(scope="module")
def viewer_demo(console, tmp_path_factory):
    """Running deployments made through the API, for the viewer to look at: iris-view (a
    classifier) and diabetes-view (a regressor), deployed side by side."""
    client = console.client("deployer")
    folder = tmp_path_factory.mktemp("view")
    demos = {"iris-view": iris_classifier(), "diabetes-view": diabetes_regressor()}
    for name, (estimator, X) in demos.items():
        job = "classification" if name == "iris-view" else "regression"
        create_model(client, name, job, X.shape[1])
        response = upload(
            client, name, save(estimator, folder / f"{name}.joblib", "joblib"), "joblib"
        )
        assert response.status_code == 201, response.text
        response = client.post("/api/deployments/", json={"name": name, "model": name})
        assert response.status_code == 202, response.text
    for name in demos:
        deployment = wait_for_status(client, name, {"running", "failed"}, timeout=120)
        assert deployment["status"] == "running", deployment["status_reason"]
    yield demos
    # Not waiting for `stopped` saves ~20 s; the undeploy itself is tested above.
    for name in demos:
        assert client.post(f"/api/deployments/{name}/undeploy/").status_code == 202


def test_viewer_sees_no_deploy_buttons_and_is_refused_anyway(visit, console, viewer_demo):
    estimator, X = viewer_demo["iris-view"]
    me = visit("viewer")
    page = me.page
    assert "viewer" in page.get_by_test_id("who").inner_text()
    assert page.locator("#deploy-link").count() == 0
    me.goto("/models/iris-view/")
    assert page.locator("#upload-link").count() == 0
    assert page.get_by_role("button", name="Deploy v1").count() == 0
    assert page.locator("#register").count() == 0
    me.goto("/deployments/iris-view/")
    assert page.locator("#actions").count() == 0
    assert page.get_by_role("button", name="Undeploy…").count() == 0

    # Viewers may try predictions.
    _predict_rows(page, X[:3])
    np.testing.assert_allclose(_table(page), estimator.predict_proba(X[:3]), rtol=0, atol=1e-9)
    me.screenshot("11-viewer-deployment")
    # The console route the page names answers the same with the viewer's token.
    api = page.locator("#snippet-api").inner_text()
    response = httpx.post(
        api,
        json=X[:3].tolist(),
        headers={"Authorization": f"Token {console.tokens['viewer']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        response.json()["predictions"], estimator.predict_proba(X[:3]), rtol=0, atol=1e-9
    )

    # Posting anyway (with a valid CSRF token, so only the role decides) is refused.
    token = me.csrf_token()
    form = {"csrfmiddlewaretoken": token}
    for path in (
        "/deployments/iris-view/undeploy/",
        "/deployments/iris-view/deploy/",
        "/deployments/iris-view/rollback/",
        "/deployments/iris-view/scale/",
        "/deploy/",
        "/models/",
        "/models/iris-view/upload/",
    ):
        response = page.request.post(console.url + path, form=form, max_redirects=0)
        assert response.status == 403, (path, response.status)
        assert "deployer role" in response.text(), path
    response = page.goto(console.url + "/deploy/")
    assert response.status == 403
    assert "deployer role" in page.locator("#forbidden-reason").inner_text()
    me.screenshot("12-viewer-forbidden")
    deployment = console.client("viewer").get("/api/deployments/iris-view/").json()
    assert deployment["status"] == "running"


def test_prediction_form_works_without_javascript(browser, console, viewer_demo):
    estimator, X = viewer_demo["iris-view"]
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    try:
        page = context.new_page()
        log_in(page, console.url, "viewer")
        page.goto(f"{console.url}/deployments/iris-view/")
        page.locator("#rows-details summary").click()
        page.get_by_label("Rows (CSV or JSON)").fill(
            "\n".join(",".join(map(str, r)) for r in X[:2])
        )
        page.get_by_role("button", name="Predict").click()
        page.locator("#prediction-table").wait_for()
        np.testing.assert_allclose(_table(page), estimator.predict_proba(X[:2]), rtol=0, atol=1e-9)
        page.get_by_label("Rows (CSV or JSON)").fill("1,2,x")
        page.get_by_role("button", name="Predict").click()
        assert "not a number" in page.locator("#field-rows .field-error").inner_text()
    finally:
        context.close()


def test_a_regressor_answers_values_from_inputs_named_x1_to_xn(visit, viewer_demo):
    estimator, X = viewer_demo["diabetes-view"]
    me = visit("viewer")
    page = me.page
    me.goto("/deployments/diabetes-view/")
    for i, value in enumerate(X[3], start=1):
        page.get_by_label(f"x{i}", exact=True).fill(repr(float(value)))
    _submit_prediction(page, "#prediction-table")
    assert page.locator("#prediction-table thead th").all_inner_texts() == [
        "Row",
        "Predicted value",
    ]
    value = float(page.locator("#prediction-table td.value").get_attribute("data-value"))
    assert abs(value - estimator.predict(X[3:4])[0]) < 1e-9
    assert page.locator("#prediction-table td.value").inner_text() == f"{value:.4f}"
    me.screenshot("12b-regression-prediction")


def test_pages_fit_a_narrow_screen_and_admins_find_the_users(visit):
    me = visit("admin", viewport=PHONE)
    page = me.page
    assert page.get_by_role("link", name="Users").get_attribute("href") == "/admin/auth/user/"
    pages = [
        ("/", "13-phone-dashboard"),
        ("/models/", "14-phone-models"),
        ("/deploy/", "15-phone-deploy-form"),
        # These exist when the deployer's flow above has run.
        ("/models/iris-ui/", "16-phone-model"),
        ("/models/iris-ui/upload/", "17-phone-upload"),
        ("/deployments/iris-ui-prod/", "18-phone-deployment"),
    ]
    for path, name in pages:
        if page.goto(me.console_url + path).status == 404:
            continue
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)
        me.screenshot(name)


def test_an_ended_session_sends_live_pages_to_the_login_page(visit):
    me = visit("viewer")
    page = me.page
    me.goto("/")
    page.context.clear_cookies()
    page.wait_for_url("**/accounts/login/?next=/", timeout=60_000)
    page.get_by_label("Username").wait_for()


def test_a_failed_deploy_shows_a_readable_reason(visit, console, tmp_path):
    client = console.client("deployer")
    estimator, _ = iris_classifier()
    create_model(client, "iris-broken", "classification", 4)
    response = upload(
        client, "iris-broken", save(estimator, tmp_path / "m.joblib", "joblib"), "joblib"
    )
    assert response.status_code == 201, response.text
    # Someone changes the stored file behind the console's back: serving must refuse it.
    stored = Path(response.json()["uri"].removeprefix("file://"))
    stored.write_bytes(stored.read_bytes() + b"tampered")
    response = client.post(
        "/api/deployments/", json={"name": "iris-broken", "model": "iris-broken"}
    )
    assert response.status_code == 202, response.text

    me = visit("deployer")
    page = me.page
    me.goto("/deployments/iris-broken/")
    page.locator('#status[data-status="failed"]').wait_for(timeout=RUNNING_TIMEOUT)
    assert "sha256" in page.locator("#reason").inner_text()
    assert "sha256" in page.locator("#events li.event-failed").first.inner_text()
    page.locator("#redeploy-button", has_text="Redeploy").wait_for()
    me.screenshot("19-deployment-failed")
    me.goto("/")
    assert "sha256" in page.locator('tr[data-deployment="iris-broken"] .reason-short').inner_text()
    client.post("/api/deployments/iris-broken/undeploy/")
