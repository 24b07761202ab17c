"""Image-text retrieval with multilingual captions.

The image-text extension reuses the text pipeline: images become `ParallelItem`s (group = image
id) so the same batch samplers build image-caption (X-X, mixed) and caption-caption (X-Y)
batches; the same InfoNCE, training loop, checkpoints and metrics do the rest.

Modules: `captions` / `synthetic` (generated scenes), `data` (records, JSONL, images),
`formats` (Multi30K, xFlickr&CO, XTD10, XM3600 loaders), `towers` (image towers), `model`
(the dual encoder), `objective` (image-text contrastive loss, momentum distillation),
`task` (the training task), `evaluate` (retrieval metrics per caption language).
"""
