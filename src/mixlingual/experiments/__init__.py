"""Experiments built from the pieces of mixlingual: sweeps, significance, convergence, robustness, probes."""
