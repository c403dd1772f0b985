"""Evaluation of CLIP models on remote-sensing benchmarks.

The metric modules here are pure functions on feature arrays, independent of any model:

- `retrieval`: Karpathy caption grouping as the official RemoteCLIP `retrieval.py`, R@k both ways.
- `zeroshot`: prompt classifiers, acc1 / acc5 / mean per-class recall, class-folder names.
- `knn`: DINO-style weighted k-NN (k = 20, T = 0.07 in the paper).
- `probe`: logistic regression on frozen features, validated or the paper's (test-selected) recipe.
- `fewshot`: per-class shot sampling and repeated linear probes.
- `counting`: the RemoteCount reconstruction from DOTA boxes and its top-k / confusion metrics.

Submodules are imported on use so that numpy-only callers do not pay for torch.
"""
