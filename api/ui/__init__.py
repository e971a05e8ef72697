"""The MLflow web UI: its static bundle and the requests only the UI makes (issue 12).

``bundle`` serves the pinned 3.17.2 build (``/``, ``/static-files/...``); ``artifacts`` the
UI's artifact views over the ``mlflow-artifacts`` stores; ``graphql`` the queries of the
experiment and run pages; ``probes`` the small capability answers the pages ask for.
"""
