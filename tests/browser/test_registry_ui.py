"""The registry in a real browser: metrics at upload (and the upload form's words for a missing
file or a wrong format), an alias set on the model page and a deployment made by it, two
versions compared; the deployment page's actions in one row, its banner going when the status
moves on, its probability table on a phone, and dark mode."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from playwright.sync_api import expect
from sklearn.linear_model import LogisticRegression

from deployments import constants as st
from tests.support.api import create_model, wait_for_status
from tests.support.browser import SCREENSHOTS, log_in
from tests.support.models import iris_classifier, save

pytestmark = [pytest.mark.browser, pytest.mark.integration]

MODEL = "reg-ui"
DEPLOYMENT = "reg-ui-champion"
RUNNING_TIMEOUT = 150_000
PHONE = {"width": 375, "height": 800}


# The page's background: the body's, or the root element's when the body's is transparent.
BACKGROUND = r"""() => {
  for (const e of [document.body, document.documentElement]) {
    const c = getComputedStyle(e).backgroundColor;
    if (c !== "transparent" && !/rgba\(.*, 0\)$/.test(c)) return c;
  }
  return "none";
}"""


def _luminance(css_colour: str) -> float:
    """Relative luminance (0 black .. 1 white) of an `rgb(...)` colour."""
    assert css_colour.startswith("rgb"), css_colour
    r, g, b = (float(x) / 255 for x in re.findall(r"[\d.]+", css_colour)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_deploy_by_alias_compare_versions_phone_table_and_dark_mode(
    visit, browser, console, tmp_path
):
    v1, X = iris_classifier()
    v2 = LogisticRegression(C=0.05, max_iter=1000).fit(X, v1.predict(X))
    art1 = save(v1, tmp_path / "v1.joblib", "joblib")
    art2 = save(v2, tmp_path / "v2.joblib", "joblib")
    deployer = console.client("deployer")
    create_model(deployer, MODEL, "classification", 4)
    with art1.open("rb") as f:
        response = deployer.post(
            f"/api/models/{MODEL}/versions/",
            files={"file": (art1.name, f)},
            data={"model_type": "joblib", "metrics": json.dumps({"auc": 0.91}), "tags": "baseline"},
        )
    assert response.status_code == 201, response.text
    assert response.json()["metrics"] == {"auc": 0.91}

    me = visit("deployer")
    page = me.page

    # The upload form: no file, then a joblib file sent as skops, then v2 with its metrics.
    me.goto(f"/models/{MODEL}/upload/")
    page.get_by_role("button", name="Upload and validate").click()
    page.locator("#field-file .field-error").wait_for()
    assert page.locator("#field-file .field-error").inner_text() == st.NO_FILE_MESSAGE
    assert page.locator("#upload-progress-label").inner_text() == (
        "No file was chosen: pick the file you saved the model to, then upload."
    )
    page.get_by_label("Model file").set_input_files(str(art2))
    page.get_by_label("Format").select_option("skops")
    page.get_by_role("button", name="Upload and validate").click()
    # (The refusal of the empty try is still shown until the answer replaces it.)
    expect(page.locator("#field-file .field-error")).to_have_text(
        "Refused: This is not a skops file: it looks like a file saved with joblib or pickle. "
        'Choose the format "joblib" (for joblib.dump) or "pickle" (for pickle.dump).',
        timeout=60_000,
    )
    me.screenshot("30-upload-wrong-format")
    page.get_by_label("Model file").set_input_files(str(art2))
    page.get_by_label("Format").select_option("joblib")
    page.locator("#describe-upload summary").click()
    page.get_by_label("Metrics (JSON)").fill('{"auc": 0.93, "dataset": "2026-q3"}')
    page.get_by_label("Tags").fill("candidate")
    page.get_by_role("button", name="Upload and validate").click()
    page.locator("#upload-result.ok", has_text="Version 2").wait_for(timeout=60_000)
    assert "auc 0.93" in page.locator("#upload-result .metrics").inner_text()

    # An alias set on the model page, audited there.
    me.goto(f"/models/{MODEL}/")
    page.get_by_label("Alias", exact=True).fill("champion")
    page.locator("#alias-version").select_option("2")
    page.get_by_role("button", name="Set alias").click()
    page.locator(".messages", has_text="champion now points at v2.").wait_for()
    assert page.locator('#version-2 .alias[data-alias="champion"]').count() == 1
    assert "champion -> v2" in page.locator("#registry-events").inner_text()
    me.screenshot("31-model-aliases")

    # Compare v1 and v2: what differs is highlighted.
    page.locator("#compare-a").select_option("1")
    page.locator("#compare-b").select_option("2")
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(f"**/models/{MODEL}/compare/?a=1&b=2")
    auc = page.locator('#compare-table tr[data-key="metric:auc"]')
    assert auc.get_attribute("class") == "differs"
    assert auc.locator("td").all_inner_texts() == ["0.91", "0.93"]
    assert page.locator('#compare-table tr[data-key="classes"]').get_attribute("class") == "same"
    me.screenshot("32-compare-versions")

    # Deploy by the alias: the picker reads it, with the tags and the upload date.
    me.goto("/deploy/")
    page.get_by_label("Deployment name").fill(DEPLOYMENT)
    picker = page.get_by_label("Model version")
    option = picker.locator("option", has_text="[champion]")
    assert re.match(
        rf"^{MODEL} v2 \[champion\] #candidate uploaded \d{{4}}-\d\d-\d\d \d\d:\d\d "
        r"\(LogisticRegression\)$",
        option.inner_text(),
    ), option.inner_text()
    picker.select_option(option.get_attribute("value"))
    page.get_by_role("button", name="Deploy").click()
    page.wait_for_url(f"**/deployments/{DEPLOYMENT}/")
    banner = page.locator(".messages .message.success")
    assert banner.count() == 1
    page.locator('#status[data-status="running"], #status[data-status="failed"]').wait_for(
        timeout=RUNNING_TIMEOUT
    )
    assert page.locator("#status").get_attribute("data-status") == "running"
    assert page.locator("#current-version").inner_text().startswith("v2")
    # The "Deploying ..." banner went when the status moved on, without a reload.
    page.locator(".messages .message.success").wait_for(state="detached")
    # The actions sit in one row at 1280 px.
    tops = [
        page.locator(f"#{button}").bounding_box()["y"]
        for button in ("change-button", "scale-button", "redeploy-button", "undeploy-button")
    ]
    assert max(tops) - min(tops) < 4, tops
    change = page.get_by_label("Change version")
    assert "[champion]" in change.locator("option:checked").inner_text()
    me.screenshot("33-deployed-by-alias")

    # On a phone the probability table fits: one card per row, nothing cut off.
    phone = visit("viewer", viewport=PHONE)
    phone.goto(f"/deployments/{DEPLOYMENT}/")
    phone.page.locator("#rows-details summary").click()
    phone.page.get_by_label("Rows (CSV or JSON)").fill(json.dumps(X[:3].tolist()))
    phone.page.get_by_role("button", name="Predict").click()
    table = phone.page.locator("#prediction-table")
    table.wait_for()
    box = table.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    scroller = table.evaluate("t => [t.parentElement.scrollWidth, t.parentElement.clientWidth]")
    assert scroller[0] <= scroller[1], scroller
    shown = [
        float(v)
        for v in phone.page.locator("#prediction-table td.prob").evaluate_all(
            "els => els.map(e => e.dataset.value)"
        )
    ]
    np.testing.assert_allclose(shown, v2.predict_proba(X[:3]).ravel(), rtol=0, atol=1e-9)
    phone.screenshot("34-phone-probability-table")

    # Dark mode follows the system setting.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    try:
        dark = context.new_page()
        log_in(dark, console.url, "viewer")
        dark.goto(f"{console.url}/deployments/{DEPLOYMENT}/")
        background = dark.evaluate(BACKGROUND)
        text = dark.evaluate("getComputedStyle(document.body).color")
        assert _luminance(background) < 0.15, background
        assert _luminance(text) > 0.6, text
        badge = dark.evaluate("getComputedStyle(document.getElementById('status')).backgroundColor")
        assert _luminance(badge) < 0.3, badge
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        dark.screenshot(path=str(SCREENSHOTS / "35-dark-mode.png"), full_page=True)
    finally:
        context.close()
    light = page.evaluate(BACKGROUND)
    assert _luminance(light) > 0.9, light

    assert deployer.post(f"/api/deployments/{DEPLOYMENT}/undeploy/").status_code == 202
    assert wait_for_status(deployer, DEPLOYMENT, {"stopping", "stopped"})["version"] == 2
