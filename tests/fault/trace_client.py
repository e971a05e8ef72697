"""The unchanged MLflow client as a traced program, run as its own process by the trace outage
test (a fresh exporter: its async queue, server-version cache and retry sessions start empty).

``python -m tests.fault.trace_client URL EXPERIMENT_ID TRACES`` makes TRACES traces of 3 spans
with MLflow's asynchronous export (the client's default), prints ``made``, waits for its export
queue, then prints one JSON line: the trace and span ids it made, and how often its HTTP client
retried a request because of the server's answer (urllib3's "Retry: <path>" debug line), per
path."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections import Counter

import mlflow
from mlflow.entities import SpanType

with warnings.catch_warnings():  # mlflow.pyfunc, imported lazily by the tracer, warns on import
    warnings.simplefilter("ignore", UserWarning)
    import mlflow.pyfunc


class _Retries(logging.Handler):
    """Counts urllib3's status-retry lines (``Retry: <url>``) per request path."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.paths: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Retry: %s" and isinstance(record.args, tuple) and record.args:
            self.paths[str(record.args[0]).split("?")[0]] += 1


def main() -> None:
    url, experiment_id, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    retries = _Retries()
    pool_log = logging.getLogger("urllib3.connectionpool")
    pool_log.setLevel(logging.DEBUG)
    pool_log.addHandler(retries)
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(experiment_id=experiment_id)
    spans: dict[str, list[str]] = {}
    for i in range(count):
        with mlflow.start_span("outage-root", span_type=SpanType.CHAIN) as root:
            root.set_inputs({"i": i})
            with mlflow.start_span("outage-llm", span_type=SpanType.LLM) as llm:
                llm.set_outputs({"text": f"answer {i}"})
            with mlflow.start_span("outage-tool", span_type=SpanType.TOOL) as tool:
                tool.set_attribute("n", i)
            spans[root.trace_id] = [root.span_id, llm.span_id, tool.span_id]
    print("made", flush=True)  # the exports are queued: the outage may start counting now
    mlflow.flush_trace_async_logging()
    print(json.dumps({"spans": spans, "retries": dict(retries.paths)}), flush=True)


if __name__ == "__main__":
    main()
