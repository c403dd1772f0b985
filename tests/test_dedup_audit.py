"""The per-source audit of a run's de-duplication: cross-source duplicates (of which source)
and test leaks per corpus per benchmark, on hashes with planted copies whose counts are known
by construction."""

import numpy as np
import pytest

from remoteclip.dedup import deduplicate
from remoteclip.report.audit import audit_table

ORDER = ["RemoteCLIP", "RS5M", "SkyScript", "GAIA"]


def distinct_hashes(n: int, seed: int = 0) -> list[int]:
    """n random 64-bit hashes, all at least 16 bits apart (checked), so only planted copies collide."""
    values = np.random.default_rng(seed).integers(0, 2**63, size=n, dtype=np.uint64).tolist()
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            assert bin(a ^ b).count("1") >= 16
    return values


def flip(value: int, bit: int) -> int:
    return value ^ (1 << bit)


@pytest.fixture
def planted():
    h = iter(distinct_hashes(40))
    remoteclip = [next(h) for _ in range(5)]
    rs5m_own = [next(h) for _ in range(4)]
    sky_own = [next(h) for _ in range(3)]
    gaia_own = [next(h) for _ in range(3)]
    rsicd_test = [next(h) for _ in range(3)]
    aid_test = [next(h) for _ in range(2)] + [rsicd_test[1]]  # one scene is in both test splits
    train = {f"RemoteCLIP:{i}": v for i, v in enumerate(remoteclip)}
    train |= {f"RS5M:own{i}": v for i, v in enumerate(rs5m_own)}
    train |= {f"RS5M:dup{i}": remoteclip[i] for i in range(3)}  # 3 copies of RemoteCLIP images
    # 3 RSICD test leaks covering 2 test images: two re-encodings of test 0, one copy of test 1 (also AID's)
    train |= {"RS5M:leak0": flip(rsicd_test[0], 1), "RS5M:leak1": flip(rsicd_test[0], 9), "RS5M:leak2": rsicd_test[1]}
    train |= {f"SkyScript:own{i}": v for i, v in enumerate(sky_own)}
    train |= {"SkyScript:dupA": rs5m_own[0], "SkyScript:dupB": rs5m_own[1], "SkyScript:dupC": remoteclip[4]}
    train |= {"SkyScript:self": sky_own[0]}  # a duplicate inside SkyScript
    train |= {f"GAIA:own{i}": v for i, v in enumerate(gaia_own)}
    train |= {"GAIA:leak": flip(aid_test[0], 3)}
    tests = {
        "RSICD": {f"RSICD:t{i}": v for i, v in enumerate(rsicd_test)},
        "AID": {f"AID:t{i}": v for i, v in enumerate(aid_test)},
    }
    return train, tests


def test_audit_counts_cross_source_duplicates_and_leaks_per_corpus_per_benchmark(planted):
    train, tests = planted
    rows, summary = deduplicate(train, tests, threshold=2, source_order=ORDER, leak_threshold=4)
    no_leak = {"images": 0, "test_images": 0}
    assert summary["audit"] == {
        "GAIA": {
            "images": 4,
            "kept": 3,
            "removed": 1,
            "duplicates_of": {},
            "test_leaks": {"AID": {"images": 1, "test_images": 1}, "RSICD": no_leak},
        },
        "RS5M": {
            "images": 10,
            "kept": 4,
            "removed": 6,
            "duplicates_of": {"RemoteCLIP": 3},
            # leak2 is a copy of a scene in both test splits: counted under both benchmarks
            "test_leaks": {"AID": {"images": 1, "test_images": 1}, "RSICD": {"images": 3, "test_images": 2}},
        },
        "RemoteCLIP": {
            "images": 5,
            "kept": 5,
            "removed": 0,
            "duplicates_of": {},
            "test_leaks": {"AID": no_leak, "RSICD": no_leak},
        },
        "SkyScript": {
            "images": 7,
            "kept": 3,
            "removed": 4,
            "duplicates_of": {"RS5M": 2, "RemoteCLIP": 1, "SkyScript": 1},
            "test_leaks": {"AID": no_leak, "RSICD": no_leak},
        },
    }
    # removed.tsv names one benchmark per image (the closest; ties: the first by name), the audit all
    reasons = {r["image"]: r["reason"] for r in rows}
    assert reasons["RS5M:leak2"] == "test leak: AID"
    assert sum(r.startswith("test leak") for r in reasons.values()) == 4


def test_audit_table_has_a_row_per_source_and_a_column_per_benchmark(planted):
    train, tests = planted
    _, summary = deduplicate(train, tests, threshold=2, source_order=ORDER, leak_threshold=4)
    header, body = audit_table(summary["audit"])
    assert header == ["source", "images", "kept", "duplicates of other sources", "in AID test", "in RSICD test"]
    rows = {r[0]: r for r in body}
    assert rows["SkyScript"][3] == "2 of RS5M, 1 of RemoteCLIP"  # its own duplicate is not another source's
    assert rows["RS5M"][4:] == ["1 (1 test images)", "3 (2 test images)"]
    assert rows["RemoteCLIP"][3:] == ["0", "0", "0"]


def test_a_run_without_benchmarks_audits_duplicates_only():
    train = {"a:1": 5, "b:1": 5, "b:2": 1 << 40}
    _, summary = deduplicate(train, {}, threshold=2, source_order=["a", "b"])
    assert summary["audit"]["b"] == {"images": 2, "kept": 1, "removed": 1, "duplicates_of": {"a": 1}, "test_leaks": {}}
