"""Studies of the training-free language debiasing (`mixlingual debias sample-size`, `sample_size.py`)."""
