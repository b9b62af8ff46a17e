"""The evaluate command on a tiny generated manifest: real ffmpeg, Whisper and MiniLM."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from catalog.models import Video
from evaluation import metrics
from retrieval.backends import reset_backends
from tests import media
from tests.conftest import storage_settings

pytestmark = [pytest.mark.models]

NATURE_PARTS = [
    ("volcano", "Lava and ash burst out of the volcano when the pressure of the magma gets "
                "too high."),
    ("whales", "Deep in the ocean, humpback whales sing long songs to each other across "
               "hundreds of kilometres."),
]
CAPTIONS = {
    "bread": ["how to make a loaf at home", "yeast dough in the oven"],
    "rockets": ["spaceship launch into orbit"],
    "gardening": ["growing vegetables"],
}


def write_manifest(path, entries) -> None:
    path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))


@pytest.fixture(scope="module")
def shared_evaluation(media_tools, clips, tmp_path_factory, django_db_setup, django_db_blocker):
    """Evaluate three clips, a two-part clip, a missing and a broken file, twice."""
    root = tmp_path_factory.mktemp("evaluate")
    bench = root / "bench"
    bench.mkdir()
    entries = []
    for name, captions in CAPTIONS.items():
        shutil.copy(clips[name], bench / f"{name}.mp4")
        entries.append({"clip_id": name, "file": f"{name}.mp4", "captions": captions})
    _, parts = media.make_narrated_video(bench / "nature.mp4", NATURE_PARTS)
    spans = {part.key: (part.start, part.end) for part in parts}
    entries.append({"clip_id": "nature", "file": "nature.mp4",
                    "captions": ["documentary about eruptions and sea mammals"],
                    "moments": [{"query": "molten rock erupting", "start": spans["volcano"][0],
                                 "end": spans["volcano"][1]},
                                {"query": "singing humpbacks underwater",
                                 "start": spans["whales"][0], "end": spans["whales"][1]}]})
    media.make_not_a_video(bench / "broken.mp4")
    entries += [{"clip_id": "missing", "file": "gone.mp4", "captions": ["never asked"]},
                {"clip_id": "broken", "file": "broken.mp4", "captions": ["never asked either"]}]
    write_manifest(bench / "manifest.jsonl", entries)
    with (bench / "manifest.jsonl").open("a") as handle:
        handle.write("{this line is not JSON\n")
    outputs = []
    with override_settings(**storage_settings(root)), django_db_blocker.unblock():
        reset_backends()
        for run in ("first", "second"):
            out = io.StringIO()
            call_command("evaluate", "--manifest", str(bench / "manifest.jsonl"), "--in-place",
                         "--out", str(root / run), "--fusion", "arithmetic", "--fusion", "rrf",
                         stdout=out)
            outputs.append((root / run, out.getvalue(), Video.objects.count()))
        tuned = io.StringIO()
        call_command("tune_fusion", "--manifest", str(bench / "manifest.jsonl"), "--in-place",
                     "--out", str(root / "tune"), "--folds", "2", "--name", "mine",
                     "--output", str(root / "profiles.json"), stdout=tuned)
        yield {"runs": outputs, "spans": spans, "tuned": tuned.getvalue(),
               "profiles": root / "profiles.json"}
        Video.objects.all().delete()
        reset_backends()


def result_of(shared_evaluation, run: int = 0) -> dict:
    folder = shared_evaluation["runs"][run][0]
    return json.loads((folder / "metrics.json").read_text())


def test_writes_the_report_metrics_and_plots(shared_evaluation):
    folder, printed, _ = shared_evaluation["runs"][0]
    for name in ("report.md", "metrics.json", "recall_at_k.png", "latency.png", "moments.png"):
        assert (folder / name).stat().st_size > 0, name
    for name in ("recall_at_k.png", "latency.png", "moments.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (folder / "report.md").read_text()
    assert "| configuration |" in report and "## Moments" in report
    assert "![recall_at_k.png](recall_at_k.png)" in report
    assert "| configuration |" in printed and "hybrid rrf" in printed


def test_missing_and_broken_clips_are_excluded_with_reasons(shared_evaluation):
    result = result_of(shared_evaluation)
    reasons = {e["clip_id"]: e["reason"] for e in result["catalog"]["excluded"]}
    assert set(reasons) == {"missing", "broken", "line 7"}
    assert "file not found: gone.mp4" in reasons["missing"]
    assert reasons["broken"].startswith("ingestion failed:")
    assert "line 7" in reasons["line 7"]
    assert result["catalog"]["clips_in_manifest"] == 7
    assert result["catalog"]["clips_evaluated"] == 4
    assert result["catalog"]["videos_ranked_over"] == 4
    # Their captions are not asked: neither hits nor misses.
    asked = [row["query"] for row in result["per_query"]]
    assert "never asked" not in asked and "never asked either" not in asked
    assert result["queries"] == {"captions": 5, "moments": 2, "no_answer": 0}
    report = (shared_evaluation["runs"][0][0] / "report.md").read_text()
    assert "`missing` (gone.mp4): file not found" in report
    assert "excluded broken" in shared_evaluation["runs"][0][1]


def test_metrics_follow_from_the_ranks(shared_evaluation):
    result = result_of(shared_evaluation)
    configs = {c["key"]: c for c in result["configurations"]}
    assert list(configs) == ["bm25", "text", "default", "arithmetic/min_max", "rrf"]
    assert [key for key, c in configs.items() if c["default"]] == ["default"]
    captions = [row for row in result["per_query"] if row["span"] is None]
    for key, config in configs.items():
        ranks = [row["ranks"][key] for row in captions]
        assert all(1 <= rank <= 4 for query in ranks for rank in query)
        assert config["video"] == pytest.approx(metrics.retrieval_metrics(ranks))
        assert config["latency_ms"]["n"] == 7
        assert 0 < config["latency_ms"]["p50"] <= config["latency_ms"]["p95"]
    hybrid = configs["arithmetic/min_max"]["video"]
    assert hybrid["R@1"] >= 0.8 and hybrid["MdR"] == 1
    assert result["chance"]["R@1"] == 0.25


def test_moment_queries_point_into_the_right_part(shared_evaluation):
    result = result_of(shared_evaluation)
    hybrid = next(c for c in result["configurations"] if c["key"] == "arithmetic/min_max")
    moments = hybrid["moments"]
    assert moments["video"]["R@1"] == 1.0
    assert 0 < moments["in_target_video"]["mIoU"] <= 1
    assert moments["top_moment"]["mIoU"] == pytest.approx(moments["in_target_video"]["mIoU"])


def test_a_second_run_reuses_the_ingested_clips(shared_evaluation):
    (_, first, count_first), (_, second, count_second) = shared_evaluation["runs"]
    assert first.count(": ingested") == 4
    assert second.count(": reused") == 4 and ": ingested" not in second
    # The broken clip is retried and fails again; nothing else is added.
    assert count_second == count_first
    assert result_of(shared_evaluation, 1)["per_query"] == result_of(shared_evaluation)["per_query"]


@pytest.mark.django_db
def test_default_run_isolates_its_catalog_in_the_workdir(media_tools, tmp_path):
    """Without --in-place the command re-runs itself against a throwaway catalog."""
    media.make_not_a_video(tmp_path / "broken.mp4")
    write_manifest(tmp_path / "manifest.jsonl", [
        {"clip_id": "broken", "file": "broken.mp4", "captions": ["a"]},
        {"clip_id": "missing", "file": "absent.mp4", "captions": ["b"]},
    ])
    before = Video.objects.count()
    out = io.StringIO()
    with pytest.raises(CommandError, match="No clip of the manifest could be evaluated"):
        call_command("evaluate", "--manifest", str(tmp_path / "manifest.jsonl"),
                     "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
                     stdout=out)
    assert (tmp_path / "work" / "db.sqlite3").is_file()
    assert Video.objects.count() == before
    report = (tmp_path / "out" / "report.md").read_text()
    assert "`broken`" in report and "`missing`" in report
    assert "Throwaway catalog and index" in out.getvalue()


def test_tune_fusion_reports_held_out_folds_and_saves_a_named_profile(shared_evaluation):
    printed = shared_evaluation["tuned"]
    assert printed.count("fold ") == 2 and "held-out R@1: tuned" in printed
    saved = json.loads(shared_evaluation["profiles"].read_text())["profiles"]["mine"]
    assert saved["about"]["queries"] == 7 and saved["about"]["folds"] == 2
    assert 0 <= saved["about"]["held_out_r1"] <= 1
    assert saved["method"] in {"arithmetic", "rrf"} and "bm25" in saved["weights"]
    from retrieval.params import parse_request
    from retrieval.profiles import get_profile

    with override_settings(REELSEARCH={**_reelsearch(), "FUSION_PROFILE_FILE":
                                       str(shared_evaluation["profiles"])}):
        assert get_profile("mine").as_settings()["weights"] == saved["weights"]
        assert parse_request({"q": "bread", "profile": "mine"}).profile == "mine"


def _reelsearch() -> dict:
    from django.conf import settings

    return dict(settings.REELSEARCH)
