"""The data the UI tests (and the bench's UI phase) look at, logged through the real client.

One experiment with two finished runs: params, tags, a few metric series, a text file, a PNG
image, a YAML file and an HTML file as artifacts, and a pyfunc model logged in the first run,
registered as version 1 of a registered model with an alias. Works against Sluice and against
the reference ``mlflow server`` alike (the compat suite's oracle), so pages can be compared.
"""

from __future__ import annotations

import contextlib
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
    trace_questions: tuple[str, ...] = ()  # the inputs of the seeded traces, shown by the tab


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
    questions = _traces(experiment_id, tag)
    return Seeded(
        experiment_id,
        name,
        (run_ids[0], run_ids[1]),
        (names[0], names[1]),
        model_name,
        model_id,
        questions,
    )


def _traces(experiment_id: str, tag: str) -> tuple[str, ...]:
    """Three traces of a small agent (a chain calling a tool and an LLM), one of them
    failing, with token usage and a feedback: what the traces tab and the Overview charts show."""
    import mlflow  # noqa: PLC0415

    mlflow.set_experiment(experiment_id=experiment_id)

    @mlflow.trace(span_type="LLM")
    def answer(question: str) -> str:
        span = mlflow.get_current_active_span()
        if span is not None:
            span.set_attribute(
                "mlflow.chat.tokenUsage",
                {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18},
            )
        if question.endswith("-2"):
            raise ValueError("the model refused")
        return question.upper()

    @mlflow.trace(name="agent", span_type="CHAIN")
    def agent(question: str) -> str:
        with mlflow.start_span("search_wiki", span_type="TOOL") as span:
            span.set_attributes({"k": 3, "source": "wiki"})
        mlflow.update_current_trace(tags={"team": "ui"})
        return answer(question)

    questions = tuple(f"ui-trace-{tag}-{i}" for i in range(3))
    for question in questions:
        with contextlib.suppress(ValueError):  # the failing trace is stored with state ERROR
            agent(question)
    mlflow.flush_trace_async_logging()
    first = mlflow.search_traces(locations=[experiment_id], return_type="list", max_results=1)
    mlflow.log_feedback(trace_id=first[0].info.trace_id, name="helpful", value=True)
    return questions
