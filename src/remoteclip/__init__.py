"""RemoteCLIP, rebuilt: the library behind the Snakemake workflow. Every stage's logic lives here;
the rules run thin entry points in scripts/ (and `python -m remoteclip.train`).

Stages and their modules (each module's docstring names its rule and the files it reads and writes):

- download: `download`, `extract` (catalogue datasets), `synthetic` (the demo world)
- parse / Mask-to-Box: `formats` (one parser per on-disk format), `m2b`, `tiling`, `found`,
  `annotations` (the COCO file, written and read record by record through `jsonstream`), `convert`
- Box-to-Caption and captions: `b2c`, `vocabulary`, `convert`, `chunks` (output that survives a
  killed job)
- de-duplication and leakage: `dedup`, `splits` (the test splits it protects: `evaluate.sets`)
- shards: `shards`
- pretrained weights and models: `weights` (reading files, the cache, fetching), the catalogues
  `zoo` (released models) and `image_encoders` (Table V's image-encoder initialisations),
  `models` (the factory), `super_resolution`
- training: `train`
- evaluation: `evaluate`
- report and versioning: `report`, `dvc`
- shared: `config` (schema validation), `schema`, `errors`, `imageio`, `logs`, `parallel`, `devices`,
  `data` (package data: the paper's published numbers, the class vocabulary)
"""

__version__ = "0.1.0"
