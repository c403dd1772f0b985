"""The report: paper-style tables (markdown + CSV), the learning check, plots, the files
`dvc metrics` / `dvc plots` read, and an index.

It reads result files only (results/eval/summary.csv and the per-task JSON, training logs,
caption files, de-duplication summaries), so it runs in seconds and can be rebuilt on any
machine that holds the results. A section without data says so; a plot without data is
still written (a PNG saying "no data") so that every declared output exists.

Our numbers sit beside the paper's (src/remoteclip/data/paper_results.csv) wherever a
configured model names a paper row (`paper:` in evaluation.models, or the default in
`models.paper_name`) and the benchmark is one of the paper's.

One module per concern:

- `outputs`: OUTPUTS, every file the report writes.
- `paper`: the paper's published numbers, its dataset order and names, Table V.
- `models`: what each evaluated model is and which paper row it reproduces.
- `results`: `Results` (our numbers, the result JSON, the paper's beside them), training logs.
- `formatting`: number formatting, markdown tables, CSV and text files.
- `tables`: one function per paper table (retrieval, zero-shot, linear probe, k-NN, few-shot,
  counting).
- `table_v`: the Table V page, the ablations' retrieval and zero-shot averages beside the paper's.
- `learning_check`: trained vs initialisation, and with vs without DET/SEG captions.
- `dvc_files`: metrics.json, training_log.csv and fewshot.csv for DVC.
- `captions`: caption lengths and word counts per source.
- `plots`: every PNG.
- `index`: index.md.
- `build`: `build_report`, which writes all of the above.
"""

from .build import build_report
from .captions import STOPWORDS, WORD, caption_stats
from .dvc_files import headline_metrics
from .formatting import md_table, write_csv
from .index import index_md
from .learning_check import CHECKED, learning_check, learning_check_outputs
from .models import describe_models, paper_name, start_key
from .outputs import OUTPUTS
from .paper import PAPER_LABELS, PAPER_ORDER, TABLE_V_SOURCES, paper_models, paper_results, table_v, table_v_label
from .plots import (
    no_data_png,
    plot_caption_lengths,
    plot_confusion,
    plot_dedup,
    plot_fewshot,
    plot_top_words,
    plot_training,
)
from .results import KIND_ORDER, Results, read_training_log
from .table_v import averages as table_v_averages
from .table_v import table_v_table
from .tables import (
    NO_EVAL,
    RET_METRICS,
    compared,
    counting_table,
    dataset_table,
    fewshot_table,
    knn_table,
    linear_probe_table,
    retrieval_table,
    zeroshot_table,
)

__all__ = [
    "CHECKED",
    "KIND_ORDER",
    "NO_EVAL",
    "OUTPUTS",
    "PAPER_LABELS",
    "PAPER_ORDER",
    "RET_METRICS",
    "STOPWORDS",
    "TABLE_V_SOURCES",
    "WORD",
    "build_report",
    "caption_stats",
    "compared",
    "counting_table",
    "dataset_table",
    "describe_models",
    "fewshot_table",
    "headline_metrics",
    "index_md",
    "knn_table",
    "learning_check",
    "learning_check_outputs",
    "linear_probe_table",
    "md_table",
    "no_data_png",
    "paper_models",
    "paper_name",
    "paper_results",
    "plot_caption_lengths",
    "plot_confusion",
    "plot_dedup",
    "plot_fewshot",
    "plot_top_words",
    "plot_training",
    "read_training_log",
    "Results",
    "retrieval_table",
    "start_key",
    "table_v",
    "table_v_averages",
    "table_v_label",
    "table_v_table",
    "write_csv",
    "zeroshot_table",
]
