"""`python -m serving.fetch SOURCE_JSON [SOURCE_JSON ...] DEST_DIR`: download an artifact (and
the files beside it, such as a sample CSV) and check each one's sha256, without loading it.

The console's validation Job on Kubernetes runs this first (with the pod's own identity for
GCS), then validates the files in a container that has them read-only. A SOURCE_JSON is the
`model:` block of a serving config as JSON (camelCase or snake_case keys); each file keeps its
blob's name in DEST_DIR. Exit 2 and one line on stderr when a file cannot be fetched or does
not match its digest.
"""

from __future__ import annotations

import argparse
import json
import sys

from pydantic import ValidationError

from serving.config import ModelSource
from serving.loading import ArtifactError, fetch_artifact, verify_sha256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.fetch", description=__doc__)
    parser.add_argument("sources", nargs="+", metavar="source", help="a file's source as JSON")
    parser.add_argument("dest_dir", help="folder to download into")
    args = parser.parse_args(argv)
    for text in args.sources:
        try:
            source = ModelSource.model_validate(json.loads(text))
            path = fetch_artifact(source, args.dest_dir)
            if source.sha256:
                verify_sha256(path, source.sha256)
        except (ValueError, ValidationError, ArtifactError) as exc:
            print("fetch: " + " ".join(str(exc).split())[:500], file=sys.stderr)
            return 2
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
