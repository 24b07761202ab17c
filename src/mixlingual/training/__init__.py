"""Training: everything `mixlingual train` runs.

* `config`: dataclass configs, YAML + `--set key=value`, validation naming the key;
* `sampling/`: which items and languages form each batch (X-X, X-Y, hybrid, mixtures,
  schedules, streaming);
* `loss`: InfoNCE over in-batch + hard negatives, gathered across DDP ranks; `gradcache`: cached
  large batches;
* `loop`: the one training loop; `setup`: DDP, optimizer, scheduler, sampler; `log`: JSONL / CSV
  / TensorBoard logs; `checkpoint`: atomic, resumable checkpoints;
* `tasks/`: what the loop trains (text retrieval, image-text);
* `mining` + `mine_cli`: mined hard negatives (`mixlingual mine`, `data.remine_every`).
"""
