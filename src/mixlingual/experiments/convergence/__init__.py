"""Convergence: per-language dev curves and the steps to 95% of the end, over seeds (`mixlingual convergence`, `report.py`)."""
