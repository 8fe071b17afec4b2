"""Each benchmark runs once at a tiny size and reports its numbers. No timing is
asserted here (the numbers belong to ``make bench``); results go to tmp_path,
never to bench/results.json."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main


@pytest.mark.timeout(120)
def test_every_benchmark_produces_its_numbers(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["--tiny", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["machine"]["cores"] and res["machine"]["python"] and res["machine"]["packages"]["textual"]
    ingest = res["ingest"]
    assert ingest["baseline"]["ingest_s"] > 0 and ingest["blotter"]["ingest_s"] > 0 and ingest["ratio"] > 0
    assert ingest["blotter"]["applied"] >= 500
    fire = res["fire"]
    for key in (
        "cancel_burst_p50_ms",
        "cancel_burst_p99_ms",
        "cancel_idle_p50_ms",
        "cancel_idle_p99_ms",
        "fresh_p50_ms",
        "fresh_p99_ms",
    ):
        assert key in fire
    assert fire["cancel_idle_n"] >= 1 and fire["cancel_idle_p50_ms"] > 0
    scale = res["scale"]["blotter"]
    assert scale["first_table_s"] > 0 and scale["rss_mb"] > 0 and scale["filter_ms"] > 0 and scale["orders"] == 200
    assert res["startup"]["startup_s"] > 0
    assert "| Benchmark |" in res["table_markdown"]
    assert "| Benchmark |" in capsys.readouterr().out
