"""Why a file could not be loaded, in the uploader's words.

The sandbox reports what the loader raised (`KeyError: 107`, `zipfile.BadZipFile: ...`), which
means nothing to someone who chose the wrong file or the wrong format. The first bytes of the
file tell which format it really is; the message names the format to choose instead, or says
the file is damaged. The loader's own words are kept in the console's log.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from deployments.constants import MODEL_TYPE_LABELS

log = logging.getLogger(__name__)

_PREFIX = "the artifact could not be loaded: "
# How each format is written, for "save it with ...".
_DUMP = {"joblib": "joblib.dump", "pkl": "pickle.dump", "skops": "skops.io.dump"}
# Compressed joblib files start with their compressor's magic bytes.
_COMPRESSED = (
    b"\x78\x01",
    b"\x78\x5e",
    b"\x78\x9c",
    b"\x78\xda",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ",
    b"\x5d\x00\x00",
    b"\x04\x22\x4d\x18",
)
_MISSING_MODULE = re.compile(r"No module named '([^']+)'")
# What the loaders raise for a file they cannot read (cut short, damaged, another format);
# anything else was raised by code the file ran while it was loaded.
_READ_ERRORS = {"UnpicklingError", "EOFError", "BadZipFile", "error", "UnicodeDecodeError"}


def sniff(path: Path) -> str | None:
    """The format the file's first bytes suggest: "skops" (a zip archive), "pickle" (a pickle
    stream, as pickle and uncompressed joblib write), "joblib" (compressed), or None."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(b"PK\x03\x04"):
        return "skops"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "pickle"
    if head.startswith(_COMPRESSED):
        return "joblib"
    return None


def load_refusal(path: Path, model_type: str, error: str) -> str:
    """The sentence an uploader reads for a file the loader could not read."""
    if not error.startswith(_PREFIX):
        return error  # already the console's words (a refused import, untrusted types)
    detail = error.removeprefix(_PREFIX)
    log.info("upload refused as %s: %s", model_type, detail)
    label = MODEL_TYPE_LABELS.get(model_type, model_type)
    missing = _MISSING_MODULE.search(detail)
    if missing:
        return (
            f"The model needs the Python module {missing.group(1)}, which is not installed "
            "where models are validated and served. Save a model built from scikit-learn "
            "(and the libraries the console lists), or ask an operator to add the module."
        )
    if "Can't get attribute" in detail or "__main__" in detail:
        return (
            "The model refers to a class or function defined in the script that saved it, "
            "which the console does not have. Move that code into an installed package, or "
            "save a model made only of library classes."
        )
    looks = sniff(path)
    if model_type == "skops" and looks in ("pickle", "joblib"):
        return (
            "This is not a skops file: it looks like a file saved with joblib or pickle. "
            'Choose the format "joblib" (for joblib.dump) or "pickle" (for pickle.dump).'
        )
    if model_type != "skops" and looks == "skops":
        return 'This looks like a skops file (a zip archive). Choose the format "skops".'
    if model_type == "pkl" and looks == "joblib":
        return 'This looks like a compressed joblib file. Choose the format "joblib".'
    kind, _, said = detail.partition(":")
    if looks is not None and kind.rsplit(".", 1)[-1].strip() not in _READ_ERRORS:
        said = said.strip() or "nothing"
        return (
            f'Loading the model ran code it holds, and that code failed, saying "{said[:1000]}". '
            "Fix the code the model was saved with, save it again and upload the new file."
        )
    if looks is None:
        return (
            f"This is not a {label} file: it does not start the way files saved with "
            f"{_DUMP.get(model_type, 'joblib.dump')} do. Choose the file you saved the model "
            "to, and the format it was saved with (joblib, pickle or skops)."
        )
    return (
        f"This {label} file could not be read: it may be cut short or damaged, or saved with "
        f"another format. Upload it again, or choose the format it was saved with "
        "(joblib, pickle or skops)."
    )
