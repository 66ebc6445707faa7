"""Write the `config` block of the model-serving chart's values schema from serving's own schema.

Serving refuses a bad config when it starts; the chart's values.schema.json makes helm refuse it
before anything is installed. The block is generated from `ServingConfig` (serving/config.py),
so its bounds, enums, patterns and defaults are serving's; the rest of the file (replicaCount,
image, ...) is written by hand and kept as it is.

    .venv/bin/python tools/gen_chart_schema.py [PATH]          rewrite the file
    .venv/bin/python tools/gen_chart_schema.py --check [PATH]  exit 1 with a diff if out of date
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA_FILE = REPO / "charts" / "model-serving" / "values.schema.json"
COMMENT = "Generated from serving/config.py by tools/gen_chart_schema.py: do not edit by hand."
DESCRIPTION = "The serving config, mounted at /etc/config/config.yaml"

# Keywords whose value is a map of names to schemas, one schema, or a list of schemas.
_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "definitions"}
_SCHEMA_ONE = {"items", "additionalProperties", "not", "if", "then", "else", "contains"}
_SCHEMA_LISTS = {"anyOf", "allOf", "oneOf", "prefixItems"}


def _inline(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every $ref replaced by its definition and pydantic's titles dropped (they
    only repeat the key); helm then needs no references resolved inside the block."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return _inline({**defs[name], **siblings}, defs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: _inline(sub, defs) for name, sub in value.items()}
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            out[key] = _inline(value, defs)
        elif key in _SCHEMA_LISTS:
            out[key] = [_inline(sub, defs) for sub in value]
        else:
            out[key] = value
    # `str | None` comes as anyOf [{type: string}, {type: null}]: say it as one list of types.
    options = out.get("anyOf", [])
    if options and all(set(option) == {"type"} for option in options):
        del out["anyOf"]
        out["type"] = [option["type"] for option in options]
    return out


def config_schema() -> dict[str, Any]:
    """The `config` block: serving's schema with its definitions inlined."""
    sys.path.insert(0, str(REPO))
    from serving.config import ServingConfig

    serving = ServingConfig.model_json_schema(by_alias=True)
    defs = serving.pop("$defs", {})
    serving.pop("description", None)
    return {"$comment": COMMENT, "description": DESCRIPTION, **_inline(serving, defs)}


def render(current: str) -> str:
    """The file's text with its `config` block regenerated (the other keys stay in place)."""
    values_schema = json.loads(current)
    values_schema["properties"]["config"] = config_schema()
    return json.dumps(values_schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    parser.add_argument("path", nargs="?", type=Path, default=SCHEMA_FILE)
    args = parser.parse_args(argv)

    current = args.path.read_text(encoding="utf-8")
    wanted = render(current)
    if current == wanted:
        print(f"{args.path} is up to date")
        return 0
    if args.check:
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            fromfile=f"{args.path} (as it is)",
            tofile=f"{args.path} (generated)",
        )
        sys.stdout.writelines(diff)
        print(f"{args.path} is out of date: run `make chart-schema`", file=sys.stderr)
        return 1
    args.path.write_text(wanted, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
