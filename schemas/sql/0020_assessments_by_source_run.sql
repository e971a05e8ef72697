-- Deleting a run deletes the assessments made in it (MLflow keeps that run id only in the
-- assessment's metadata): an expression index so the delete does not scan every assessment.
CREATE INDEX trace_assessments_by_source_run
    ON trace_assessments ((doc -> 'metadata' ->> 'mlflow.assessment.sourceRunId'));
