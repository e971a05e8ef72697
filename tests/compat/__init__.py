"""Differential compatibility suite: the same scripted requests go to a real `mlflow server`
(the reference) and to Sluice (the target); responses are compared after normalising ids and
times. Cases live in `cases/`, the gate in `implemented.txt`, accepted differences in
`deviations.py`. See `conftest.py` for how to run it."""
