"""Canonical records, their JSONL formats, and one loader module per dataset behind a registry."""

from mixlingual.data.records import Candidate, Collection, ParallelItem, Query

__all__ = ["Candidate", "Collection", "ParallelItem", "Query"]
