"""What a search may list to a caller (pure): MLflow's auth app drops the experiments and
registered models the caller may not read from search answers, and fills the page from later
rows. Here the condition is part of the page query, so pages and their tokens stay exact.
"""

from __future__ import annotations

from api.search.sql import Binder
from schemas.access import Level, Viewer

_NO_ACCESS = Level.NO_PERMISSIONS.name


def readable_experiment(viewer: Viewer | None, experiment_id_sql: str, binder: Binder) -> str:
    """A condition on the row whose experiment id is ``experiment_id_sql``; TRUE for no viewer."""
    if viewer is None:
        return "TRUE"
    return _readable(
        "experiment_permissions p WHERE p.experiment_id = " + experiment_id_sql, viewer, binder
    )


def readable_model(viewer: Viewer | None, model_name_sql: str, binder: Binder) -> str:
    """A condition on the row whose registered model's name is ``model_name_sql``."""
    if viewer is None:
        return "TRUE"
    return _readable(
        "registered_model_permissions p WHERE p.name = " + model_name_sql, viewer, binder
    )


def _readable(grants: str, viewer: Viewer, binder: Binder) -> str:
    user = binder.bind(viewer.username, "text")
    default = binder.bind(viewer.default.name, "text")
    return (
        f"coalesce((SELECT p.permission FROM {grants} AND p.username = {user}), {default})"
        f" <> '{_NO_ACCESS}'"
    )
