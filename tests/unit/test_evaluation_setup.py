"""Evaluation manifests, configurations and the spoken benchmark's texts (no models)."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from evaluation import evaluation
from retrieval import search as search_service

ROOT = Path(__file__).resolve().parents[2]


def write_manifest(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                            for line in lines))
    return path


def test_manifest_lines_are_checked_and_bad_ones_excluded(tmp_path):
    manifest = evaluation.load_manifest(write_manifest(tmp_path / "m.jsonl", [
        {"clip_id": "a", "file": "clips/a.mp4", "captions": ["first query", "second"]},
        "{not json",
        {"clip_id": "b", "file": "b.mp4"},
        {"clip_id": "a", "file": "again.mp4", "captions": ["x"]},
        {"clip_id": "c", "file": "c.mp4", "captions": [],
         "moments": [{"query": "q", "start": 4, "end": 2}]},
        {"clip_id": "d", "file": "d.mp4", "captions": [], "title": "Given title",
         "moments": [{"query": "the moment", "start": 1.5, "end": 3}]},
        "",
    ]))
    assert [clip.clip_id for clip in manifest.clips] == ["a", "d"]
    a, d = manifest.clips
    assert a.path == tmp_path / "clips" / "a.mp4"
    assert a.metadata == {"title": "clip 1", "description": "", "tags": []}
    assert d.metadata["title"] == "Given title"
    assert d.moments == (evaluation.MomentQuery("the moment", 1.5, 3.0),)
    reasons = {e.clip_id: e.reason for e in manifest.excluded}
    assert set(reasons) == {"line 2", "b", "a", "c"}
    assert "line 2" in reasons["line 2"]
    assert "nothing to ask" in reasons["b"]
    assert "earlier line" in reasons["a"]
    assert "start < end" in reasons["c"]


def test_an_unreadable_or_empty_manifest_is_an_error(tmp_path):
    with pytest.raises(evaluation.ManifestError, match="Cannot read"):
        evaluation.load_manifest(tmp_path / "absent.jsonl")
    with pytest.raises(evaluation.ManifestError, match="no entries"):
        evaluation.load_manifest(write_manifest(tmp_path / "empty.jsonl", [""]))


def test_identical_captions_become_one_query_with_several_clips(tmp_path):
    manifest = evaluation.load_manifest(write_manifest(tmp_path / "m.jsonl", [
        {"clip_id": "a", "file": "a.mp4", "captions": ["A dog running", "only a"]},
        {"clip_id": "b", "file": "b.mp4", "captions": ["a  dog running"],
         "moments": [{"query": "m", "start": 0, "end": 1}]},
        {"clip_id": "c", "file": "c.mp4", "captions": ["excluded clip"]},
    ]))
    captions, moments = evaluation.build_queries(manifest, {"a": "va", "b": "vb"})
    assert [(q.text, q.targets) for q in captions] == [("A dog running", ("va", "vb")),
                                                       ("only a", ("va",))]
    assert moments == [evaluation.Query("m", ("vb",), ("b",), (0.0, 1.0))]


def test_configurations_cover_each_signal_then_each_fusion():
    configs = evaluation.configurations(signals=("bm25", "text"))
    assert [c.key for c in configs] == ["bm25", "text", "default", *evaluation.DEFAULT_FUSIONS]
    assert configs[0].signals == ("bm25",) and configs[2].signals == ("bm25", "text")
    assert [c.profile for c in configs] == [None, None, "default"] + [None] * len(
        evaluation.DEFAULT_FUSIONS)
    chosen = evaluation.configurations(
        [evaluation.parse_fusion("rrf"), evaluation.parse_fusion("RRF"),
         evaluation.parse_fusion("arithmetic/z_score/bm25=0.3,text=0.7")],
        signals=("bm25", "text"))
    assert [c.key for c in chosen] == ["bm25", "text", "default", "rrf",
                                       "arithmetic/z_score/bm25=0.3,text=0.7"]
    assert [c.key for c in evaluation.configurations(signals=("bm25",))] == ["bm25"]


@pytest.mark.parametrize("text", ["magic", "rrf/min_max/a=1/extra", "", "geometric/z_score",
                                  "rrf/min_max/a=1/dual_softmax/more"])
def test_bad_fusion_specs_are_rejected(text):
    with pytest.raises(ValueError):
        evaluation.parse_fusion(text)


def test_visual_signal_only_with_a_visual_model(monkeypatch, settings):
    monkeypatch.setattr(search_service, "SIGNALS", ("bm25", "text", "visual"))
    assert evaluation.available_signals() == ("bm25", "text")
    settings.REELSEARCH = {**settings.REELSEARCH, "VISUAL_MODEL": "tiny-clip"}
    assert evaluation.available_signals() == ("bm25", "text", "visual")
    keys = [c.key for c in evaluation.configurations()]
    assert keys[:3] == ["bm25", "text", "visual"]


# --------------------------------------------------------------------------- spoken benchmark


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "spoken_make_manifest", ROOT / "bench" / "spoken" / "make_manifest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def spoken():
    data = json.loads((ROOT / "bench" / "spoken" / "texts.json").read_text(encoding="utf-8"))
    return load_generator(), data


def test_spoken_benchmark_texts_are_usable(spoken):
    generator, data = spoken
    assert generator.problems(data) == []
    assert len(data["clips"]) + len(data["long_clips"]) >= 40
    assert sum(len(clip["parts"]) for clip in data["long_clips"]) >= 10
    assert all(len(clip["queries"]) >= 2 for clip in data["clips"] + data["long_clips"])


def test_spoken_benchmark_check_catches_verbatim_queries(spoken):
    generator, data = spoken
    broken = copy.deepcopy(data)
    bread = broken["clips"][0]
    bread["queries"].append(bread["text"].split(".")[0].upper() + "!")
    broken["long_clips"][0]["parts"][0]["query"] = broken["clips"][1]["queries"][0]
    found = generator.problems(broken)
    assert any("substring of the narration" in problem for problem in found)
    assert any("also asked of" in problem for problem in found)
