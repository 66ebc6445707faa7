"""The static storage compresses a file once (gzip only), and again only when it changed."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from console.static import StaticStorage


def _compress(root: Path, names: list[str]) -> list[str]:
    storage = StaticStorage(location=str(root))
    return sorted(processed for _, processed, _ in storage.post_process(dict.fromkeys(names)))


def test_files_are_gzipped_once_and_again_only_when_changed(tmp_path: Path) -> None:
    script = tmp_path / "app.js"
    script.write_text("console.log('hello');\n" * 500)
    style = tmp_path / "app.css"
    style.write_text("body { color: black; }\n" * 500)
    names = ["app.js", "app.css"]

    assert _compress(tmp_path, names) == ["app.css.gz", "app.js.gz"]
    assert gzip.decompress((tmp_path / "app.js.gz").read_bytes()) == script.read_bytes()
    assert not list(tmp_path.glob("*.br"))  # gzip only, whether brotli is installed or not

    assert _compress(tmp_path, names) == []  # nothing changed: nothing compressed

    script.write_text("console.log('changed');\n" * 500)
    later = (tmp_path / "app.js.gz").stat().st_mtime + 10
    os.utime(script, (later, later))
    assert _compress(tmp_path, names) == ["app.js.gz"]
    assert gzip.decompress((tmp_path / "app.js.gz").read_bytes()) == script.read_bytes()
