"""Bad input, as an attacker sends it to a live console: each case gets a clear answer (status
and message) and leaves nothing written or stuck.

- JSON nested thousands deep: 400 naming the limit on every JSON parser (API, token endpoint,
  predict, the UI's rows box), never a RecursionError.
- `input_size` is bounded, and a wide model's page has no input per feature.
- Multipart bodies write files only on the upload endpoints, for deployers: an anonymous POST
  to the login page writes nothing (a trap makes any write fail loudly) and a large one is
  refused before its body is read.
- Slow clients (idle, half-sent heads, trickled bodies) do not stall anyone else.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from tests.support.models import iris_classifier, save
from tests.support.net import wait_until
from tests.support.stack import ConsoleStack

pytestmark = pytest.mark.integration

DEEP = 5000
TOO_DEEP = "nested more than 32 levels deep"
NARROW = "limits-iris"
WIDE = "limits-wide"
WIDE_FEATURES = 5000


def deep_json(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def create_model(client: httpx.Client, name: str, job: str, input_size: int) -> None:
    response = client.post(
        "/api/models/", json={"name": name, "job": job, "input_size": input_size}
    )
    assert response.status_code == 201, response.text


def upload(client: httpx.Client, model: str, path: Path) -> httpx.Response:
    with path.open("rb") as f:
        return client.post(
            f"/api/models/{model}/versions/",
            files={"file": (path.name, f)},
            data={"model_type": "joblib"},
        )


def login(stack: ConsoleStack, persona: str) -> httpx.Client:
    """A browser-like client logged in through the login page."""
    client = httpx.Client(base_url=stack.url, timeout=60)
    page = client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={
            "username": persona,
            "password": f"{persona}-password-1",
            "csrfmiddlewaretoken": csrf_from(page.text),
        },
    )
    assert response.status_code == 302, response.text[:500]
    return client


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture(scope="module")
def deployments(console: ConsoleStack, tmp_path_factory) -> Iterator[dict[str, str]]:
    """A narrow (iris) and a wide (5,000 features) deployment; their status does not matter."""
    folder = tmp_path_factory.mktemp("limits-models")
    client = console.client("deployer")
    create_model(client, NARROW, "classification", 4)
    estimator, _ = iris_classifier()
    assert (
        upload(client, NARROW, save(estimator, folder / "iris.joblib", "joblib")).status_code == 201
    )
    create_model(client, WIDE, "regression", WIDE_FEATURES)
    rng = np.random.default_rng(0)
    wide = LinearRegression().fit(rng.normal(size=(8, WIDE_FEATURES)), rng.normal(size=8))
    response = upload(client, WIDE, save(wide, folder / "wide.joblib", "joblib"))
    assert response.status_code == 201, response.text
    names = {"narrow": "limits-narrow", "wide": "limits-wide-dep"}
    for key, model in (("narrow", NARROW), ("wide", WIDE)):
        response = client.post("/api/deployments/", json={"name": names[key], "model": model})
        assert response.status_code == 202, response.text
    yield names
    for name in names.values():
        client.post(f"/api/deployments/{name}/undeploy/")


# JSON nesting -------------------------------------------------------------------------------


def test_deeply_nested_json_is_a_400_on_the_api(console, deployments):
    client = console.client("deployer")
    cases = [
        ("post", "/api/deployments/"),
        ("post", "/api/models/"),
        ("patch", f"/api/deployments/{deployments['narrow']}/"),
        ("post", f"/api/deployments/{deployments['narrow']}/predict/"),
    ]
    for method, path in cases:
        response = client.request(
            method, path, content=deep_json(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, (path, response.status_code, response.text[:300])
        assert TOO_DEEP in response.json()["detail"], path
    # The limit is a depth, not a size: a matrix that is wide but shallow is parsed.
    wide_row = client.post(
        f"/api/deployments/{deployments['narrow']}/predict/", json=[[0.0] * 4] * 500
    )
    assert wide_row.status_code != 400 or TOO_DEEP not in wide_row.text


def test_deeply_nested_json_is_a_400_on_the_token_endpoint(console):
    response = httpx.post(
        f"{console.url}/api/token/",
        content=deep_json(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 400, response.text[:300]
    assert TOO_DEEP in response.json()["detail"]
    assert httpx.get(f"{console.url}/accounts/login/", timeout=60).status_code == 200


def test_deeply_nested_rows_are_a_clear_error_in_the_ui(console, deployments):
    viewer = login(console, "viewer")
    page = viewer.get(f"/deployments/{deployments['narrow']}/")
    response = viewer.post(
        f"/deployments/{deployments['narrow']}/predict/",
        data={"rows": deep_json(), "csrfmiddlewaretoken": csrf_from(page.text)},
    )
    assert response.status_code == 400
    assert "This JSON is nested more than 32 levels deep" in response.text


# input_size and wide models -----------------------------------------------------------------


def test_input_size_is_bounded(console):
    client = console.client("deployer")
    for size in (10_001, 400_000):
        response = client.post(
            "/api/models/", json={"name": f"wide-{size}", "job": "regression", "input_size": size}
        )
        assert response.status_code == 400, response.text
        assert "Use 1 to 10000 features" in response.json()["input_size"][0]
    ui = login(console, "deployer")
    page = ui.get("/models/")
    response = ui.post(
        "/models/",
        data={
            "name": "wide-ui",
            "job": "regression",
            "input_size": "400000",
            "csrfmiddlewaretoken": csrf_from(page.text),
        },
    )
    assert response.status_code == 400
    assert "Use 1 to 10000 features" in response.text
    names = [
        m["name"] for m in client.get("/api/models/", params={"limit": 1000}).json()["results"]
    ]
    assert not {"wide-10001", "wide-400000", "wide-ui"} & set(names)


def test_a_wide_model_page_has_no_input_per_feature(console, deployments):
    viewer = login(console, "viewer")
    narrow = viewer.get(f"/deployments/{deployments['narrow']}/")
    assert narrow.status_code == 200
    assert len(re.findall(r'<input[^>]+name="f\d+"', narrow.text)) == 4  # the control

    wide = viewer.get(f"/deployments/{deployments['wide']}/")
    assert wide.status_code == 200
    assert not re.findall(r'<input[^>]+name="f\d+"', wide.text)
    assert f"This model takes {WIDE_FEATURES} features" in wide.text
    assert '<details id="rows-details" open>' in wide.text
    # One example row of zeros in the snippets is what is left of the width.
    assert len(wide.content) < 200_000, len(wide.content)

    empty = viewer.post(
        f"/deployments/{deployments['wide']}/predict/",
        data={"rows": "", "csrfmiddlewaretoken": csrf_from(wide.text)},
    )
    assert empty.status_code == 400
    assert "Paste rows as CSV or JSON: this model takes 5000 features" in empty.text


# Uploads ------------------------------------------------------------------------------------


@contextlib.contextmanager
def writes_fail(console: ConsoleStack) -> Iterator[None]:
    """Replace the upload temporary folder with a plain file: any attempt to write an uploaded
    file there fails (a 500), so a request that wrote nothing is one that did not answer 500."""
    folder = console.var_dir / "uploads"
    aside = console.var_dir / "uploads.aside"
    folder.rename(aside)
    folder.write_bytes(b"")
    try:
        yield
    finally:
        folder.unlink()
        aside.rename(folder)


FILE = ("model.joblib", b"\x80" * (3 * 1024 * 1024))


def test_multipart_files_are_written_only_by_deployers_on_upload_endpoints(console, deployments):
    upload_path = f"/api/models/{NARROW}/versions/"
    with writes_fail(console):
        # The control: a deployer's upload does write, so the trap fails it.
        control = console.client("deployer").post(
            upload_path, files={"file": FILE}, data={"model_type": "joblib"}
        )
        assert control.status_code == 500

        # With the CSRF cookie (anyone gets one) the login page reads the body to find the
        # form's token: before the gate, that wrote the file.
        anonymous = httpx.Client(base_url=console.url, timeout=60)
        anonymous.get("/accounts/login/")
        assert anonymous.cookies.get("csrftoken")
        refused = anonymous.post(
            "/accounts/login/", files={"file": FILE}, data={"username": "viewer", "password": "x"}
        )
        assert refused.status_code == 403  # no CSRF token in the form; the file was dropped
        viewer = console.client("viewer").post(
            upload_path, files={"file": FILE}, data={"model_type": "joblib"}
        )
        assert viewer.status_code == 403
        anonymous_api = httpx.post(f"{console.url}{upload_path}", files={"file": FILE}, timeout=60)
        assert anonymous_api.status_code == 401
        # A multipart login (a file part alongside) still logs in: only the file is dropped.
        browser = httpx.Client(base_url=console.url, timeout=60)
        token = csrf_from(browser.get("/accounts/login/").text)
        logged_in = browser.post(
            "/accounts/login/",
            files={"file": FILE},
            data={
                "username": "viewer",
                "password": "viewer-password-1",
                "csrfmiddlewaretoken": token,
            },
        )
        assert logged_in.status_code == 302
    assert not list((console.var_dir / "uploads").iterdir())


def raw_request(console: ConsoleStack, head: bytes, timeout: float = 30) -> bytes:
    """Send only a request head and read the answer, if one comes before `timeout`."""
    answer = b""
    with socket.create_connection(("127.0.0.1", console.port), timeout=timeout) as sock:
        sock.sendall(head)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def test_a_large_multipart_body_is_refused_before_it_is_read(console):
    # 100 MB announced and never sent: the answer comes without the console waiting for it.
    for path in ("/accounts/login/", f"/api/models/{NARROW}/versions/"):
        answer = raw_request(
            console,
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {100 * 1024**2}\r\n\r\n".encode(),
        )
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"files only on the upload endpoints, for deployers" in answer


# Slow clients -------------------------------------------------------------------------------


class SlowClients:
    """Connections that hold what a thread-per-request server would give them: no bytes at
    all, a request head that never ends, a body that trickles in a byte a second."""

    HEADS = {
        "idle": b"",
        "head": b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        "body": (
            b"POST /api/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000\r\n\r\n{"
        ),
        "large body": (
            b"POST /api/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n{"
        ),
    }

    def __init__(self, port: int, each: int = 30) -> None:
        self.socks: list[socket.socket] = []
        for head in self.HEADS.values():
            for _ in range(each):
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                if head:
                    sock.sendall(head)
                self.socks.append(sock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.trickle, daemon=True)
        self.thread.start()

    def trickle(self) -> None:
        while not self.stop.wait(1.0):
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.send(b"x")

    def closed_by_server(self) -> int:
        closed = 0
        for sock in self.socks:
            sock.setblocking(False)
            try:
                while chunk := sock.recv(65536):
                    pass
                closed += 1 if chunk == b"" else 0
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for sock in self.socks:
            sock.close()


def test_slow_clients_do_not_stall_others(console):
    slow = SlowClients(console.port)
    try:
        for _ in range(5):
            # 120 slow connections against 8 threads: each of these would wait forever.
            response = httpx.get(f"{console.url}/accounts/login/", timeout=30)
            assert response.status_code == 200
            token = httpx.post(
                f"{console.url}/api/token/",
                json={"username": "nobody", "password": "wrong-password-1"},
                timeout=30,
            )
            assert token.status_code == 401
        # None of them is kept for ever: the console drops every slow connection.
        wait_until(
            lambda: slow.closed_by_server() == len(slow.socks),
            120,
            "the console to drop the slow connections",
        )
    finally:
        slow.close()
    assert httpx.get(f"{console.url}/accounts/login/", timeout=30).status_code == 200
