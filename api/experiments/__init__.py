"""Experiments: handlers, store (all experiment SQL and the experiment row lock), rules, render,
and the experiments/search compiler."""
