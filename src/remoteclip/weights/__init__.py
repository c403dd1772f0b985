"""Pretrained weights: one module per job, imported by name (this package imports none of them,
so code that needs only the cache layout pulls in neither torch nor the download libraries).

- `files`: reading weight files safely (the one place checkpoints are unpickled) and taking a
  checkpoint out of a zip archive;
- `cache`: the weights cache, the one place that knows its layout: what a config needs
  (`WeightSource`s), where each source lies once fetched, the manifests, offline mode. Read
  while Snakemake builds the DAG, so it imports neither torch nor open_clip;
- `fetch`: downloading a source into the cache and verifying it (sha256 against what the
  source publishes and the weights lock). Only the local `fetch_weights` rule imports it:
  training and scoring read the cache and never import download code.

Where weights come from is data elsewhere: the model zoo (`remoteclip.zoo`, released CLIP
models) and the image-encoder catalogue (`remoteclip.image_encoders`, Table V's
initialisations); building models from them is `remoteclip.models`.
"""
