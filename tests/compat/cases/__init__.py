"""Case files: each module exports ENDPOINTS (exactly the endpoints its cases touch) and CASES.
Modules whose name starts with `_` are helpers, not case files."""
