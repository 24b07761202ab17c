"""Evaluation: how well a model retrieves, and the files that say so.

* `search`: scoring in bounded memory (exact chunks, FAISS) and ranks of the relevant candidates;
* `metrics`: AP/mAP, R@k, MRR@k, nDCG@k, rank distance as pure functions over rankings;
* `embedding_cache`: embeddings cached on disk by model fingerprint;
* `evaluate`: `evaluate_collection`, the mono / cross / multi settings and their numbers;
* `outputs`: the evaluation's files (metrics.json, per_query.jsonl, TREC runs, qrels);
* `report`: tables and plots from metrics files (`mixlingual report`);
* `cli`: `mixlingual evaluate`.
"""
