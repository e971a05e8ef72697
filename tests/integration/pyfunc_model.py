"""A tiny pyfunc model for test_artifacts (own module: importing mlflow.pyfunc warns at import
time, which the suite's filterwarnings=error would turn into a collection error)."""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel  # type: ignore[attr-defined]


class AddN(PythonModel):
    def __init__(self, n: int) -> None:
        self.n = n

    def predict(self, context: Any, model_input: list[int], params: Any = None) -> list[int]:
        return [x + self.n for x in model_input]
