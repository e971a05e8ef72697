"""MLflow's error contract: error codes, their HTTP statuses and the JSON envelope.

The table mirrors ``ERROR_CODE_TO_HTTP_STATUS`` of MLflow 3.x (``mlflow/exceptions.py``):
``RESOURCE_ALREADY_EXISTS`` is a 400, ``INVALID_STATE`` a 500, and any code not listed is a 500.
Every service converts typed errors to this envelope at exactly one place (its middleware).
"""

from __future__ import annotations

from typing import Final

HTTP_STATUS: Final[dict[str, int]] = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_STATE": 500,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "NOT_FOUND": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "CUSTOMER_UNAUTHORIZED": 401,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "NOT_IMPLEMENTED": 501,
    "DEADLINE_EXCEEDED": 504,
    "FEATURE_DISABLED": 500,
}

# (sqlstate, error_class) MLflow 3.x emits beside error_code; clients branch on error_code only.
_CLASSIFICATION: Final[dict[str, tuple[str, str]]] = {
    "INVALID_PARAMETER_VALUE": ("KAM00", "INVALID_PARAMETER_VALUE"),
    "BAD_REQUEST": ("KAM00", "INVALID_PARAMETER_VALUE"),
    "RESOURCE_ALREADY_EXISTS": ("KAM00", "RESOURCE_ALREADY_EXISTS"),
    "RESOURCE_DOES_NOT_EXIST": ("KAM00", "RESOURCE_NOT_FOUND"),
    "ENDPOINT_NOT_FOUND": ("KAM00", "RESOURCE_NOT_FOUND"),
    "NOT_FOUND": ("KAM00", "RESOURCE_NOT_FOUND"),
    "PERMISSION_DENIED": ("KAM00", "PERMISSION_DENIED"),
    "INTERNAL_ERROR": ("XXM00", "CLIENT_INTERNAL_ERROR"),
    "INVALID_STATE": ("XXM00", "CLIENT_INTERNAL_ERROR"),
    "TEMPORARILY_UNAVAILABLE": ("XXM00", "CLIENT_INTERNAL_ERROR"),
}

# The sqlstate of an error class MLflow names explicitly (``error_class=`` on its exception).
_SQLSTATE_BY_CLASS: Final[dict[str, str]] = {"ATTRIBUTE_NOT_FOUND": "KAM04"}

API_DOCS_HINT: Final = "See the API docs for more information about request parameters."


def http_status(code: str) -> int:
    """HTTP status MLflow answers for ``code``; unknown codes are 500 as in MLflow."""
    return HTTP_STATUS.get(code, 500)


class MlflowError(Exception):
    """An error the client sees as MLflow's ``{"error_code", "message"}`` body."""

    def __init__(self, code: str, message: str, error_class: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_class = error_class  # a finer class than the code's (_SQLSTATE_BY_CLASS)

    @property
    def status(self) -> int:
        return http_status(self.code)

    def to_json(self) -> dict[str, str]:
        body = {"error_code": self.code, "message": self.message}
        if self.error_class in _SQLSTATE_BY_CLASS:
            body["sqlstate"] = _SQLSTATE_BY_CLASS[self.error_class]
            body["error_class"] = self.error_class
        elif self.code in _CLASSIFICATION:
            body["sqlstate"], body["error_class"] = _CLASSIFICATION[self.code]
        return body


class Unavailable(MlflowError):
    """Back-pressure: a dependency is slow or down. Answered as 429 + Retry-After because
    429 is the only status the MLflow client retries for every call type (reliability.md A2.4)."""

    def __init__(self, message: str, retry_after_s: int = 2) -> None:
        super().__init__("REQUEST_LIMIT_EXCEEDED", message)
        self.retry_after_s = retry_after_s


def invalid_parameter(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message)


def missing_parameter(path: str) -> MlflowError:
    return invalid_parameter(f"Missing value for required parameter '{path}'. {API_DOCS_HINT}")


def does_not_exist(message: str) -> MlflowError:
    return MlflowError("RESOURCE_DOES_NOT_EXIST", message)


def endpoint_not_found() -> MlflowError:
    return MlflowError("ENDPOINT_NOT_FOUND", "Not Found")


# MLflow's texts for a missing or non-active run or experiment, written once for every service.
def no_such_experiment(raw_id: str) -> MlflowError:
    return does_not_exist(f"No Experiment with id={raw_id} exists")


def no_such_run(run_id: str) -> MlflowError:
    return does_not_exist(f"Run with id={run_id} not found")


def not_active(kind: str, ident: str, stage: str) -> MlflowError:
    """``kind`` is "run" or "experiment"; MLflow answers 400 for a write to a deleted one."""
    return invalid_parameter(
        f"The {kind} {ident} must be in the 'active' state. Current state is {stage}."
    )
