"""Data shipped with the package: `vocabulary.yaml` (the canonical class names every parser maps
to, with per-dataset aliases; read by `remoteclip.vocabulary`) and `paper_results.csv` (the
paper's published numbers, which the report sets beside ours)."""
