"""Studies built from the pieces of mixlingual, one folder a study.

sweep/        grids of training runs: plan (the command), cells, grid, aggregate, selection,
              split_content, candidates, report, plots, tables
convergence/  dev curves over seeds: runs (and language groups), summary, report (the command)
robustness/   noisy and adversarial queries: perturb (+ alphabets), attack, run (the command),
              folders, summary, report, study (a whole study from a file)
transfer/     beyond retrieval: bitext (+ bitext_cli), probe (+ tasks)
debias/       studies of the training-free debiasing: sample_size
demo.py       `mixlingual demo`

The statistics they share are one module, `mixlingual.stats`.
"""
