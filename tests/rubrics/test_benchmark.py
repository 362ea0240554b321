"""The benchmark runs end to end (small sizes), so it cannot rot unnoticed."""

from .benchmark_rubrics import main


def test_benchmark_smoke():
    report = main(["--responses", "40", "--judge-calls", "20"])
    assert report["programmatic"]["responses"] == 40 and report["programmatic"]["responses_per_s"] > 0
    assert report["judge"]["concurrency_64"]["calls_per_s"] > 0
