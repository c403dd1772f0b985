"""RemoteCLIP, rebuilt: the library behind the Snakemake workflow. Every stage's logic lives here;
the rules run thin entry points in scripts/ (and `python -m remoteclip.train`).

Stages and their modules (each module's docstring names its rule and the files it reads and writes):

- download: `download`, `extract` (catalogue datasets), `synthetic` (the demo world)
- parse / Mask-to-Box: `formats` (one parser per on-disk format), `m2b`, `tiling`, `found`,
  `annotations`, `convert`
- Box-to-Caption and captions: `b2c`, `vocabulary`, `convert`
- de-duplication and leakage: `dedup`, `testsets`, `splits`
- shards: `shards`
- pretrained weights: `weight_cache`, `weight_fetch`, `weights`
- training: `train`
- evaluation: `evaluate`
- report and versioning: `report`, `dvc`
- shared: `config` (schema validation), `errors`, `imageio`, `logs`, `parallel`
"""

__version__ = "0.1.0"
