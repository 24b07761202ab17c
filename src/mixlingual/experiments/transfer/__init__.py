"""Transfer beyond retrieval: bitext retrieval (`bitext.py`, `bitext_cli.py`) and zero-shot probes (`mixlingual probe`, `probe.py`)."""
