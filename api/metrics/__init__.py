"""Metric history reads: handlers, request rules, the chunk series reader (series) and the point
JSON (render). Metric writes are ingest's and the writer's."""
