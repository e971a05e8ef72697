"""Class 6 of issue 14, generated: the headers of artifact downloads, for every file-name kind.

MLflow serves a download as an attachment with `X-Content-Type-Options: nosniff` and a content
type from its own mapping: the names it treats as text (its text-extension list, plus its
constants `MLmodel` and `mlproject`, which have no extension), then Python's `mimetypes`, then
application/octet-stream. The names below enumerate that mapping: every text extension, the
two extension-less MLflow files, the extensions `mimetypes` knows and some it does not, and
names whose Content-Disposition needs quoting or an RFC 5987 `filename*`.
"""

from __future__ import annotations

from tests.compat.cases._build import AJAX, API, case
from tests.compat.model import Case, Step, step_endpoint

ARTIFACTS = "mlflow-artifacts/artifacts"
# MLflow's text extensions (mlflow/utils/mime_type_utils.py, 3.17.2), each as `f.<ext>`.
TEXT_EXTENSIONS = [
    "txt",
    "log",
    "err",
    "cfg",
    "conf",
    "cnf",
    "cf",
    "ini",
    "properties",
    "prop",
    "hocon",
    "toml",
    "yaml",
    "yml",
    "xml",
    "json",
    "js",
    "py",
    "py3",
    "csv",
    "tsv",
    "md",
    "rst",
    "ipynb",
]
SPECIAL_NAMES = (
    "MLmodel",
    "MLproject",
    "mlmodel",  # the mapping is case-sensitive: not MLmodel
    "mlproject",  # MLflow's constant for the project file is lower-case
    "conda.yaml",
    "requirements.txt",
    "python_env.yaml",
    "model.pkl",
    "input_example.json",
    "noextension",
    ".hidden",
    "archive.tar.gz",
    "FILE.TXT",
    "a.b.c",
    "with space.txt",
    'quote".txt',
    "semi;colon.csv",
    "comma,name.json",
    "日本語.txt",
    "naïve.png",
)
OTHER_EXTENSIONS = [
    "html",
    "htm",
    "png",
    "jpg",
    "jpeg",
    "gif",
    "svg",
    "pdf",
    "zip",
    "gz",
    "parquet",
    "npy",
    "pt",
    "onnx",
    "bin",
    "h5",
    "wasm",
    "css",
    "mp4",
]
NAMES = (
    *(f"f.{ext}" for ext in TEXT_EXTENSIONS),
    *SPECIAL_NAMES,
    *(f"f.{ext}" for ext in OTHER_EXTENSIONS),
)
HEADERS = ("Content-Type", "Content-Disposition", "X-Content-Type-Options")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _put(path: str) -> Step:
    return {
        "method": "PUT",
        "path": API.replace("/mlflow/", "/") + f"{ARTIFACTS}/{path}",
        "body_bytes": "0123",
        "headers": {"Content-Type": "application/octet-stream"},
        "expect": 200,
    }


def _download(root: str, path: str) -> Step:
    return {
        "method": "GET",
        "path": root.replace("/mlflow/", "/") + f"{ARTIFACTS}/{path}",
        "compare_headers": HEADERS,
        "expect": 200,
    }


def _case(name: str) -> Case:
    path = "${uid}/" + name
    return case(
        f"artifact-headers/{_slug(name)}", _put(path), _download(API, path), _download(AJAX, path)
    )


CASES: list[Case] = [_case(name) for name in NAMES]
ENDPOINTS = frozenset(step_endpoint(step) for c in CASES for step in c["steps"])
