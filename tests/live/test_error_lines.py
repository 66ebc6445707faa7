"""What a deployment's status reason may say about a dead serving process: the error, never an
access-log line, never a secret."""

from __future__ import annotations

import signal

from deployments.runtimes.base import is_access_log_line, last_error_line
from deployments.runtimes.supervisor import describe_exit
from deployments.scrub import redact_secret_patterns

TRACEBACK = """model iris ready
Traceback (most recent call last):
  File "/srv/model.py", line 3, in predict
ValueError: the model needs 4 features
{"ts":1764584042.1,"method":"GET","path":"/v2/health/ready","route":"/v2/health/ready","status":200}
{"ts":1764584043.2,"method":"GET","path":"/v2/health/ready","route":"/v2/health/ready","status":200}
"""


def test_the_reason_is_the_last_error_line_not_an_access_log_line() -> None:
    assert last_error_line(TRACEBACK) == "ValueError: the model needs 4 features"
    assert is_access_log_line(TRACEBACK.splitlines()[-1])
    assert not is_access_log_line('{"error": "not an access line"}')
    assert last_error_line('{"ts":1,"path":"/predict","status":200}\n') == ""


def test_secrets_are_scrubbed() -> None:
    text = (
        "could not reach postgres://console:hunter2@db/console with password=s3cret, "
        'token: abc123, "api_key": "k-9", AWS_SECRET_ACCESS_KEY=xyz, Authorization: Bearer '
        "eyJhbGciOiJIUzI1NiJ9"
    )
    scrubbed = redact_secret_patterns(text)
    for secret in ("hunter2", "s3cret", "abc123", "k-9", "xyz", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in scrubbed
    assert "postgres://console:[redacted]@db/console" in scrubbed
    assert last_error_line("RuntimeError: login failed, password=s3cret") == (
        "RuntimeError: login failed, password=[redacted]"
    )


def test_an_exit_is_described_by_its_error_or_its_signal() -> None:
    assert describe_exit(1, TRACEBACK.encode()) == (
        "ValueError: the model needs 4 features (exit code 1)"
    )
    assert describe_exit(-signal.SIGKILL, TRACEBACK.encode()) == "killed by SIGKILL"
    assert describe_exit(3, b"") == "exited with code 3"
