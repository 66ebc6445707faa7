"""Reading a deployment's prediction log back (what serving/predlog.py wrote): the newest
records for the predictions API, and a window's inputs for drift.

Files are `<sink>/<YYYY-MM-DD>/<unix ms>-<instance>-<seq>.jsonl`, so names sort by time and a
reader opens only the newest files, or those of the window.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

from deployments.models import Deployment
from deployments.specs import prediction_log_sink


class LogUnavailable(Exception):
    """The log's storage cannot be read now; the message says why."""


def _file_ms(name: str) -> int:
    try:
        return int(name.rsplit("/", 1)[-1].split("-", 1)[0])
    except ValueError:
        return 0


def _days_back(since: float | None, until: float) -> list[str]:
    """Day folders from `until` back to `since` (or the last 400 days), newest first."""
    first = since if since is not None else until - 400 * 86400
    days = []
    t = until
    while t >= first - 86400:
        days.append(time.strftime("%Y-%m-%d", time.gmtime(t)))
        t -= 86400
    return days


def _folder_files(folder: Path, since: float | None, until: float) -> Iterator[bytes]:
    for day in _days_back(since, until):
        directory = folder / day
        if not directory.is_dir():
            continue
        names = sorted((p.name for p in directory.glob("*.jsonl")), reverse=True)
        for name in names:
            if since is not None and _file_ms(name) < (since - 120) * 1000:
                return  # older files hold older records only (a batch spans seconds)
            try:
                yield (directory / name).read_bytes()
            except FileNotFoundError:
                continue


def _gcs_files(uri: str, since: float | None, until: float) -> Iterator[bytes]:
    from django.conf import settings
    from google.api_core import exceptions as gexc
    from google.cloud import storage

    bucket_name, _, prefix = uri.removeprefix("gs://").partition("/")
    try:
        bucket = storage.Client(project=settings.GCS_PROJECT or None).bucket(bucket_name)
        for day in _days_back(since, until):
            blobs = sorted(
                bucket.list_blobs(prefix=f"{prefix}/{day}/"), key=lambda b: b.name, reverse=True
            )
            for blob in blobs:
                if since is not None and _file_ms(blob.name) < (since - 120) * 1000:
                    return
                yield blob.download_as_bytes()
    except (gexc.GoogleAPIError, OSError) as exc:
        raise LogUnavailable(f"the prediction log in {uri} cannot be read: {exc}") from None


def _files(deployment: Deployment, since: float | None, until: float) -> Iterator[bytes]:
    sink = prediction_log_sink(deployment)
    if sink.startswith("gs://"):
        yield from _gcs_files(sink, since, until)
    elif sink:
        yield from _folder_files(Path(sink.removeprefix("file://")), since, until)


def _records(data: bytes) -> list[dict]:
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def latest(deployment: Deployment, limit: int) -> list[dict]:
    """The newest `limit` records, newest first."""
    found: list[dict] = []
    for data in _files(deployment, None, time.time()):
        found += _records(data)
        if len(found) >= limit * 4:  # files of several replicas interleave: read a margin
            break
    found.sort(key=lambda r: r.get("ts") or 0, reverse=True)
    return found[:limit]


def inputs_since(deployment: Deployment, since: float, max_rows: int) -> list:
    """The input rows of the records logged since `since`, at most `max_rows` (the newest)."""
    rows: list = []
    for data in _files(deployment, since, time.time()):
        for record in _records(data):
            if (record.get("ts") or 0) >= since and isinstance(record.get("inputs"), list):
                rows += record["inputs"]
        if len(rows) >= max_rows:
            break
    return rows[:max_rows]
