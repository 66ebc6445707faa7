"""Static files: collected once, compressed once.

whitenoise's compressing storage compresses every collected file on every `collectstatic`
(with brotli too, wherever some other package installed it): about half a minute of CPU at each
`make run` and for every console a test starts, for files that had not changed. This storage
compresses only the files whose gzip copy is missing or older than the file, and only with
gzip, which every browser takes (the console's image has no brotli, so the two now agree).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from whitenoise.compress import Compressor
from whitenoise.storage import CompressedStaticFilesStorage


class StaticStorage(CompressedStaticFilesStorage):
    def create_compressor(self, **kwargs: Any) -> Compressor:
        return Compressor(use_brotli=False, **kwargs)

    def post_process(self, paths: dict[str, Any], dry_run: bool = False, **options: Any) -> Any:
        stale = {name: found for name, found in paths.items() if self._stale(name)}
        yield from super().post_process(stale, dry_run, **options)

    def _stale(self, name: str) -> bool:
        source = Path(self.path(name))
        compressed = source.with_name(source.name + ".gz")
        try:
            # The compressor gives its copy the file's own modification time.
            return compressed.stat().st_mtime < source.stat().st_mtime
        except FileNotFoundError:
            return True
