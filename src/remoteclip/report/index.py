"""The report's overview, index.md: the models and the paper rows they map to, links to every
table, the learning check and the DVC files, the data (caption summary, de-duplication),
training, the learning check itself and every plot."""

from __future__ import annotations

from ..licences import TERMS, note
from .audit import audit_table
from .formatting import md_table
from .outputs import OUTPUTS
from .results import Results
from .tables import NO_EVAL


def _dedup_row(run: str, summary: dict) -> list:
    t = summary.get("thresholds") or {}
    dup, leak = t.get("training_duplicates") or {}, t.get("test_leaks") or {}
    return [
        run,
        summary.get("images"),
        summary.get("removed"),
        summary.get("kept"),
        f"{dup['removed']} (< {dup['threshold']})" if dup else "–",
        f"{leak['removed']} (< {leak['threshold']})" if leak else "–",
        leak.get("below_duplicate_threshold", "–"),
    ]


def _audit_md(run: str, audit: dict) -> str:
    header, rows = audit_table(audit)
    return (
        f"\nRun {run}, per training source: images removed as duplicates of another source (the "
        "source listed earlier in the run keeps its copy), and training images that match each "
        "benchmark's test split (an image is counted under every benchmark it matches):\n\n" + md_table(header, rows)
    )


def _licence_cells(licence: dict | None) -> list:
    if licence is None:
        return ["–"] * (1 + len(TERMS))
    return [licence["licence"], *(str(licence["terms"][t]).lower() for t in TERMS)]


def _licence_notes(runs: dict, licences: dict) -> list[str]:
    """Per run whose sources are not all free for commercial use and derivatives: its note."""
    lines = []
    for run, info in runs.items():
        flagged = note({s: licences[s] for s in info.get("sources") or [] if s in licences})
        if flagged:
            lines.append(f"- **{run}**: {flagged} (read their licences before using the model)\n")
    return lines


def index_md(
    res: Results,
    tables: dict,
    check_md: str,
    cap_summary: dict,
    dedup: dict,
    logs: dict,
    runs: dict | None = None,
    licences: dict | None = None,
) -> str:
    lines = ["# RemoteCLIP reproduction: report\n\n"]
    if res.models:
        lines.append("## Models\n\n")
        lines.append(
            md_table(
                ["model", "what", "paper row"], [[n, m["origin"], m.get("paper") or "–"] for n, m in res.models.items()]
            )
        )
    else:
        lines.append(NO_EVAL + "\n")
    lines.append("\n## Tables\n\n")
    titles = {
        "retrieval": "cross-modal retrieval (Table II)",
        "zeroshot": "zero-shot top-1 (Table III)",
        "linear_probe": "linear probe top-1 (Table IV)",
        "knn": "k-NN top-1 (Table IV)",
        "fewshot": "few-shot top-1 (Fig. 9)",
        "counting": "counting top-1..10 (Fig. 8)",
    }
    for name, title in titles.items():
        count = len(res.benches(name))
        status = f"{count} benchmark(s)" if count else "no data"
        lines.append(f"- [{title}]({OUTPUTS[name + '_md']}) ([CSV]({OUTPUTS[name + '_csv']})): {status}\n")
    ablations = sum(
        1 for r in tables["table_v"][1] if r.get("ours_retrieval") is not None or r.get("ours_zeroshot") is not None
    )
    lines.append(
        f"- [ablations (Table V)]({OUTPUTS['table_v_md']}) ([CSV]({OUTPUTS['table_v_csv']})): "
        f"{ablations} of {len(tables['table_v'][1])} rows with our numbers\n"
    )
    lines.append(
        f"- [leaderboard: every model, ours beside the authors' numbers]({OUTPUTS['leaderboard_md']}) "
        f"([CSV]({OUTPUTS['leaderboard_csv']}), [plot]({OUTPUTS['leaderboard_png']}))\n"
    )
    lines.append(
        f"- [learning check]({OUTPUTS['learning_check_md']}) ([CSV]({OUTPUTS['learning_check_csv']}), "
        f"[JSON]({OUTPUTS['learning_check_json']}))\n"
    )
    lines.append(
        f"- DVC: [{OUTPUTS['metrics']}]({OUTPUTS['metrics']}), [{OUTPUTS['training_log']}]"
        f"({OUTPUTS['training_log']}), [{OUTPUTS['fewshot_points']}]({OUTPUTS['fewshot_points']})\n"
    )

    lines.append("\n## Data\n\n")
    datasets = cap_summary.get("datasets") or {}
    if datasets:
        lines.append(
            md_table(
                ["source", "group", "images", "captioned", "captions", "skipped", "licence", *TERMS],
                [
                    [
                        n,
                        d.get("group", "?"),
                        d.get("images", "–"),
                        d.get("captioned", "–"),
                        d.get("captions", "–"),
                        d.get("skipped_total", "–"),
                        *_licence_cells((licences or {}).get(n)),
                    ]
                    for n, d in datasets.items()
                ],
            )
        )
    else:
        lines.append("No caption summary.\n")
    notes = _licence_notes(runs or {}, licences or {})
    if notes:
        lines.append("\nRuns with sources whose commercial use or derivatives are not allowed or not known:\n\n")
        lines += notes
    if dedup:
        lines.append(
            "\nDe-duplication per run (pHash; training duplicates and test-split leakage, each with "
            "its threshold: removed when the Hamming distance is below it):\n\n"
        )
        lines.append(
            md_table(
                [
                    "run",
                    "images",
                    "removed",
                    "kept",
                    "training duplicates",
                    "test leaks",
                    "leaks the duplicate threshold alone finds",
                ],
                [_dedup_row(run, s) for run, s in dedup.items()],
            )
        )
        lines.extend(_audit_md(run, s["audit"]) for run, s in dedup.items() if s.get("audit"))
    else:
        lines.append("\nNo de-duplication summary (no runs configured).\n")
    if logs:
        lines.append(
            "\nTraining: "
            + ", ".join(
                f"{run} ({rows[-1]['step']} steps, final logged loss {rows[-1]['loss']:.3f})"
                for run, rows in logs.items()
                if rows
            )
            + "\n"
        )

    lines.append("\n" + check_md.replace("# Learning check", "## Learning check", 1).replace("\n## ", "\n### "))
    lines.append("\n## Plots\n\n")
    for name, title in (
        ("training_png", "training loss and learning rate"),
        ("fewshot_png", "few-shot curves"),
        ("counting_png", "counting confusion matrices"),
        ("caption_lengths_png", "caption length per source group"),
        ("top_words_png", "top words per source"),
        ("dedup_png", "de-duplication"),
    ):
        lines.append(f"### {title}\n\n![{title}]({OUTPUTS[name]})\n\n")
    return "".join(lines)
