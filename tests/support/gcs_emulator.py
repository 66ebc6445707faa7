"""gcp-storage-emulator with one gap filled: `ifGenerationMatch=0` on uploads.

The emulator ignores upload preconditions, so an upload meant never to overwrite would silently
replace a blob. Run as `python -m tests.support.gcs_emulator start ...` (the emulator's own
command line); an upload with `ifGenerationMatch=0` for a name that exists answers 412, as GCS
does. The check happens when the upload starts (GCS checks again when it ends).
"""

from __future__ import annotations

import sys
from http import HTTPStatus

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

_insert = objects.insert


def _object_name(request) -> str | None:
    if request.query.get("name"):
        return request.query["name"][0]
    data = request.data if isinstance(request.data, dict) else {}
    return data.get("name") or (data.get("meta") or {}).get("name")


def insert(request, response, storage, *args, **kwargs):
    wants_new = request.query.get("ifGenerationMatch") == ["0"]
    name = _object_name(request)
    if wants_new and name and "upload_id" not in request.query:
        try:
            storage.get_file_obj(request.params["bucket_name"], name)
        except NotFound:
            pass
        else:
            response.status = HTTPStatus.PRECONDITION_FAILED
            response.json(
                {
                    "error": {
                        "code": 412,
                        "message": "At least one of the pre-conditions you specified did not hold.",
                        "errors": [{"reason": "conditionNotMet"}],
                    }
                }
            )
            return None
    return _insert(request, response, storage, *args, **kwargs)


# Before the server module builds its routing table from the handler functions.
objects.insert = insert

from gcp_storage_emulator.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
