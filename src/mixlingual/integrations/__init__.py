"""Bridges to other libraries: sentence-transformers training and encoding, LASER.

Each module imports its library lazily, so `import mixlingual.integrations` costs nothing.
"""
