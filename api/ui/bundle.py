"""The built MLflow UI, served from the folder ``scripts/ui-bundle.sh`` unpacks.

``index.html`` is never cached (it names the current hashed scripts); files whose names carry
a content hash are cached for four weeks and marked immutable; the rest (favicon, manifests)
are revalidated. The install script writes a ``.gz`` beside every compressible file, which
aiohttp's ``FileResponse`` sends when the browser accepts gzip. Request paths are checked like
artifact paths (``api.artifacts.paths``: raw and fully decoded) and, after resolving symlinks,
must stay inside the bundle folder.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from api.artifacts import paths
from schemas.mlflow_errors import MlflowError
from sluice.config import ApiConfig

log = logging.getLogger(__name__)

LONG_CACHE: Final = "public, max-age=2419200, immutable"  # 28 days, as MLflow's max_age
NO_CACHE: Final = "no-cache"
# webpack's content hashes: main.c2f5f8d4.js, 3254.9017d695.chunk.js, x.d0f8ea2c83c0.worker.js
_HASHED: Final = re.compile(r"\.[0-9a-f]{8,32}\.")
_STATIC_PREFIX: Final = "/static-files/"
# The two handlers that exist only while the UI is on (api/app.py leaves them out otherwise).
HANDLERS: Final = frozenset({f"{__name__}:ui_index", f"{__name__}:ui_static_file"})


@dataclass(frozen=True, slots=True)
class Bundle:
    root: Path  # resolved

    @classmethod
    def at(cls, folder: str) -> Bundle:
        return cls(Path(folder).resolve())

    @property
    def installed(self) -> bool:
        return (self.root / "index.html").is_file()


bundle_key = web.AppKey("ui_bundle", Bundle)


def cache_control(name: str) -> str:
    """Cache policy of a bundle file by its base name (pure)."""
    return LONG_CACHE if _HASHED.search(name) else NO_CACHE


def locate(root: Path, parts: paths.Segments) -> Path | None:
    """The file ``parts`` names below ``root`` (resolved, symlinks followed), or None when it
    is missing, a directory, or resolves outside the root."""
    target = root.joinpath(*parts).resolve()
    if root not in target.parents or not target.is_file():
        return None
    return target


async def bundle_context(app: web.Application, cfg: ApiConfig) -> AsyncIterator[None]:
    """cleanup_ctx: where the bundle is; a missing bundle is logged once, not fatal (the REST
    API works without it)."""
    bundle = Bundle.at(cfg.ui_dir)
    if cfg.ui_enabled and not bundle.installed:
        log.warning(
            "MLflow UI bundle not found; run scripts/ui-bundle.sh install",
            extra={"ui_dir": str(bundle.root)},
        )
    app[bundle_key] = bundle
    yield


def _not_installed() -> web.Response:
    return web.Response(
        status=404,
        text="The MLflow UI bundle is not installed: run scripts/ui-bundle.sh install.\n",
    )


def _file(path: Path, cache: str) -> web.FileResponse:
    return web.FileResponse(
        path, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    )


async def ui_index(request: web.Request) -> web.StreamResponse:
    bundle = request.app[bundle_key]
    if not bundle.installed:
        return _not_installed()
    return _file(bundle.root / "index.html", NO_CACHE)


async def ui_static_file(request: web.Request) -> web.StreamResponse:
    bundle = request.app[bundle_key]
    if not bundle.installed:
        return _not_installed()
    # The raw target: aiohttp's decoded path has had "a/../b" collapsed into "b" already.
    raw = request.raw_path.partition("?")[0]
    try:
        parts = paths.from_raw_tail(raw.removeprefix(_STATIC_PREFIX))
    except MlflowError:
        raise web.HTTPNotFound() from None
    found = locate(bundle.root, parts)
    if found is None:
        raise web.HTTPNotFound()
    return _file(found, cache_control(found.name))
