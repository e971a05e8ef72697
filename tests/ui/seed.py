"""The data the UI tests (and the bench's UI phase) look at, logged through the real client.

One experiment with two finished runs: params, tags, a few metric series, a text file, a PNG
image, a YAML file and an HTML file as artifacts, and a pyfunc model logged in the first run,
registered as version 1 of a registered model with an alias. Works against Sluice and against
the reference ``mlflow server`` alike (the compat suite's oracle), so pages can be compared.
"""

from __future__ import annotations

import struct
import tempfile
import uuid
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient


@dataclass(frozen=True, slots=True)
class Seeded:
    experiment_id: str
    experiment_name: str
    run_ids: tuple[str, str]
    run_names: tuple[str, str]
    model_name: str
    model_id: str


def png(width: int = 64, height: int = 48) -> bytes:
    """A small valid RGB PNG (a gradient), without an imaging library."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 128)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _artifacts(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("hello from the sluice ui test\nsecond line\n")
    (folder / "plot.png").write_bytes(png())
    (folder / "config.yaml").write_text("lr: 0.01\nlayers: [64, 32]\n")
    (folder / "report.html").write_text("<html><body><script>alert(1)</script>hi</body></html>")
    return folder


def seed(tracking_uri: str, tag: str | None = None) -> Seeded:
    import mlflow  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mlflow.pyfunc warns while importing
        import mlflow.pyfunc  # noqa: PLC0415

        from tests.integration.pyfunc_model import AddN  # noqa: PLC0415

    tag = tag or uuid.uuid4().hex[:8]
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    name = f"ui-demo-{tag}"
    experiment_id = client.create_experiment(name)
    # Leading zeros: the model list sorts by name and pages, and a whole suite registers many
    # models before this one; the seeded model must be on the first page.
    model_name = f"000-ui-model-{tag}"
    run_ids: list[str] = []
    names = ("brave-owl-1", "calm-fox-2")
    model_id = ""
    with tempfile.TemporaryDirectory() as tmp:
        files = _artifacts(Path(tmp) / "files")
        for i, run_name in enumerate(names):
            with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
                mlflow.log_params({"lr": 0.01 * (i + 1), "layers": "64,32", "optimizer": "adam"})
                mlflow.set_tags({"team": "ui", "stage": f"trial-{i}"})
                for step in range(20):
                    mlflow.log_metrics(
                        {"loss": 1.0 / (step + 1 + i), "accuracy": step / (20.0 + i)}, step=step
                    )
                mlflow.log_artifacts(str(files))
                if i == 0:
                    info = mlflow.pyfunc.log_model(
                        name="model", python_model=AddN(3), pip_requirements=["mlflow"]
                    )
                    model_id = info.model_id
                run_ids.append(run.info.run_id)
    version = mlflow.register_model(f"runs:/{run_ids[0]}/model", model_name)
    client.set_registered_model_alias(model_name, "champion", version.version)
    return Seeded(
        experiment_id, name, (run_ids[0], run_ids[1]), (names[0], names[1]), model_name, model_id
    )
