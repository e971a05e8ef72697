"""MLflow 3 logged models: handlers, store (every logged_model* statement), rules (request fields
and the search query), render."""
