"""Runs: lifecycle, get, search, inputs and outputs (handlers), their SQL (store), request rules
and the Run JSON (render), and the runs/search compiler (search)."""
