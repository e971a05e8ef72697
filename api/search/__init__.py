"""The MLflow filter and order_by language (pure): lexer, parser, per-entity rules, shared SQL
fragments. The per-resource compilers (``api/runs/search.py``, ``api/experiments/search.py``,
``api/registry/search.py``) turn its clauses into queries."""
