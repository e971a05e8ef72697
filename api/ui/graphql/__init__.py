"""``/graphql``: the GraphQL endpoint of the MLflow UI's experiment and run pages.

``schema`` declares the types and root fields the 3.17.2 UI queries (MLflow's type names, so
the UI's variable declarations validate); ``limits`` refuses hostile documents before they
are validated or run; ``resolvers`` answer from the same read paths as the REST routes;
``handler`` is the HTTP edge.
"""
