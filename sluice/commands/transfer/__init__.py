"""``sluice import`` and ``sluice export``: move tracking data between an MLflow database and
Sluice, with SQL on both sides (never through a running server).

- ``mlflow_db``: the MLflow side, SQLite or PostgreSQL behind one small async interface;
- ``tables``: pure -- which MLflow table feeds which Sluice table, and how a row converts;
- ``sluice_db``: the Sluice side: batched idempotent upserts that refuse conflicting rows;
- ``points``: metric history, streamed series by series into chunk rows;
- ``importer`` / ``exporter``: the two directions, table by table, with ``progress`` bars and
  a verification summary at the end.
"""
