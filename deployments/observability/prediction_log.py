"""Reading a deployment's prediction log back (what serving/predlog.py wrote): the newest
records for the predictions API, and a window's inputs for drift.

Files are `<sink>/<YYYY-MM-DD>/<unix ms>-<instance>-<seq>.jsonl`, so names sort by time and a
reader opens only the newest files, or those of the window.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from deployments.models import Deployment
from deployments.specs import prediction_log_sink

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
log = logging.getLogger(__name__)


class LogUnavailable(Exception):
    """The log's storage cannot be read now; the message says why."""


def _file_ms(name: str) -> int:
    try:
        return int(name.rsplit("/", 1)[-1].split("-", 1)[0])
    except ValueError:
        return 0


def _days(found: list[str], since: float | None) -> list[str]:
    """The day folders among `found` that may hold records since `since`, newest first."""
    first = time.strftime("%Y-%m-%d", time.gmtime(since - 86400)) if since is not None else ""
    return sorted((d for d in found if _DAY.match(d) and d >= first), reverse=True)


def _folder_files(folder: Path, since: float | None) -> Iterator[bytes]:
    if not folder.is_dir():
        return
    for day in _days([p.name for p in folder.iterdir()], since):
        names = sorted((p.name for p in (folder / day).glob("*.jsonl")), reverse=True)
        for name in names:
            if since is not None and _file_ms(name) < (since - 120) * 1000:
                return  # older files hold older records only (a batch spans seconds)
            try:
                yield (folder / day / name).read_bytes()
            except FileNotFoundError:
                continue


def _gcs_files(uri: str, since: float | None) -> Iterator[bytes]:
    from django.conf import settings
    from google.api_core import exceptions as gexc
    from google.cloud import storage

    bucket_name, _, prefix = uri.removeprefix("gs://").partition("/")
    try:
        client = storage.Client(project=settings.GCS_PROJECT or None)
        listing = client.list_blobs(bucket_name, prefix=f"{prefix}/", delimiter="/")
        for _ in listing.pages:  # the day folders are the listing's prefixes
            pass
        days = [p.rstrip("/").rsplit("/", 1)[-1] for p in listing.prefixes]
        for day in _days(days, since):
            blobs = sorted(
                client.list_blobs(bucket_name, prefix=f"{prefix}/{day}/"),
                key=lambda b: b.name,
                reverse=True,
            )
            for blob in blobs:
                if since is not None and _file_ms(blob.name) < (since - 120) * 1000:
                    return
                yield blob.download_as_bytes()
    except (gexc.GoogleAPIError, OSError) as exc:
        raise LogUnavailable(f"the prediction log in {uri} cannot be read: {exc}") from None


def _files(deployment: Deployment, since: float | None) -> Iterator[bytes]:
    """The log's files, newest first (those that may hold records since `since`)."""
    sink = prediction_log_sink(deployment)
    if sink.startswith("gs://"):
        yield from _gcs_files(sink, since)
    elif sink:
        yield from _folder_files(Path(sink.removeprefix("file://")), since)


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
    for data in _files(deployment, None):
        found += _records(data)
        if len(found) >= limit * 4:  # files of several replicas interleave: read a margin
            break
    found.sort(key=lambda r: r.get("ts") or 0, reverse=True)
    return found[:limit]


def inputs_since(deployment: Deployment, since: float, max_rows: int) -> list:
    """The input rows of the records logged since `since`, at most `max_rows` (the newest)."""
    rows: list = []
    for data in _files(deployment, since):
        for record in _records(data):
            if (record.get("ts") or 0) >= since and isinstance(record.get("inputs"), list):
                rows += record["inputs"]
        if len(rows) >= max_rows:
            break
    return rows[:max_rows]


def prune(now: float | None = None) -> list[str]:
    """Delete the day folders of the local log (every deployment's, removed ones' too) older
    than PREDICTION_LOG_RETENTION_DAYS; the folders deleted, as DEPLOYMENT/DAY."""
    from django.conf import settings

    days = settings.PREDICTION_LOG_RETENTION_DAYS
    root = Path(settings.PREDICTION_LOG_DIR)
    if days <= 0 or not root.is_dir():
        return []
    # A day's folder holds records up to its end: it goes once the whole day is `days` old.
    first_kept = time.strftime("%Y-%m-%d", time.gmtime((now or time.time()) - days * 86400))
    deleted = []
    for deployment in sorted(p for p in root.iterdir() if p.is_dir()):
        for day in sorted(p for p in deployment.iterdir() if p.is_dir()):
            if _DAY.match(day.name) and day.name < first_kept:
                shutil.rmtree(day, ignore_errors=True)
                deleted.append(f"{deployment.name}/{day.name}")
    if deleted:
        log.info("prediction log: deleted %d day folders older than %d days", len(deleted), days)
    return deleted
