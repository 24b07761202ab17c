"""Sweeps: a grid of training runs, each evaluated, aggregated over seeds and compared (`mixlingual sweep`, `plan.py`)."""
