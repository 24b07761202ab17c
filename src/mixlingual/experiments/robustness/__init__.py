"""Robustness: clean vs perturbed and attacked queries, per model and over recipes (`mixlingual robustness`, `run.py`; `mixlingual attack`, `attack.py`)."""
