"""The de-duplication audit as a report table: a row per training source, how many of its
images were removed as duplicates of another source, and how many match each benchmark's
test split (results/dedup/{run}/summary.json's `audit`, written by remoteclip.dedup.audit)."""

from __future__ import annotations


def audit_table(audit: dict) -> tuple[list[str], list[list]]:
    """The audit as one table: a row per source; columns images, kept, removed as duplicates
    (with the sources they duplicate), then the matching training images per benchmark."""
    benches = sorted({b for counts in audit.values() for b in counts["test_leaks"]})
    header = ["source", "images", "kept", "duplicates of other sources", *[f"in {b} test" for b in benches]]
    body = []
    for source, counts in sorted(audit.items()):
        others = {o: n for o, n in counts["duplicates_of"].items() if o != source}
        dup = ", ".join(f"{n} of {o}" for o, n in others.items()) or "0"
        leaks = [_leak_cell(counts["test_leaks"].get(b)) for b in benches]
        body.append([source, counts["images"], counts["kept"], dup, *leaks])
    return header, body


def _leak_cell(leak: dict | None) -> str:
    if not leak or not leak["images"]:
        return "0"
    return f"{leak['images']} ({leak['test_images']} test images)"
