"""The visual and audio branches run at once and join before embed (eager Celery, threads).

Stages are replaced by stand-ins that record which thread ran them and when, so no media
tools or models are needed. The eager run uses a real database connection per thread,
hence `transaction=True`.
"""

from __future__ import annotations

import threading
import time

import pytest

from catalog.models import Video, VideoStatus
from workers import pipeline, progress, tasks
from workers.pipeline import STAGE_NAMES, stages
from workers.pipeline.branches import BRANCHES

VISUAL, AUDIO = (branch.stages for branch in BRANCHES)


@pytest.fixture()
def recorded(monkeypatch) -> list[tuple[str, str, float, float]]:
    """Replace every stage by a stand-in recording (stage, thread, start, end)."""
    calls: list[tuple[str, str, float, float]] = []
    audio_started = threading.Event()

    def stand_in(ctx, stage: str) -> None:
        started = time.monotonic()
        if stage == AUDIO[0]:
            audio_started.set()
        if stage == VISUAL[0]:  # only returns early when the audio branch runs meanwhile
            audio_started.wait(timeout=10)
        ctx.notice(f"{stage} was here")
        ctx.record_model(stage, "stand-in")
        time.sleep(0.05)
        calls.append((stage, threading.current_thread().name, started, time.monotonic()))

    for stage in STAGE_NAMES:
        monkeypatch.setitem(stages.STAGES, stage, lambda ctx, stage=stage: stand_in(ctx, stage))
    monkeypatch.setattr(pipeline, "cleanup", lambda ctx: None)
    return calls


def new_video(title: str) -> Video:
    (video,) = Video.objects.bulk_create([Video(title=title, source=f"videos/{title}.mp4")])
    return video


@pytest.mark.django_db(transaction=True)
def test_the_branches_overlap_and_embed_runs_once_after_both(recorded):
    video = new_video("lecture")
    tasks.enqueue_video(str(video.pk))

    video.refresh_from_db()
    assert (video.status, video.stage, video.progress) == (VideoStatus.READY, "done", 1.0)
    assert (video.visual_stage, video.audio_stage) == ("done", "done")
    names = [stage for stage, *_ in recorded]
    assert sorted(names) == sorted(STAGE_NAMES), "every stage ran exactly once"
    span = {stage: (start, end) for stage, _, start, end in recorded}
    thread = {stage: name for stage, name, *_ in recorded}
    assert thread[VISUAL[0]] != thread[AUDIO[0]], "the branches ran in one thread"
    assert span[AUDIO[0]][0] < span[VISUAL[0]][1], "the audio branch waited for the visual one"
    assert span["embed"][0] >= max(span[VISUAL[-1]][1], span[AUDIO[-1]][1])
    for order in (VISUAL, AUDIO, ("probe", "embed", "index")):
        starts = [span[stage][0] for stage in order]
        assert starts == sorted(starts), order
    # Both branches wrote the JSON fields at once: nothing either wrote was lost.
    assert set(video.stage_timings) == set(STAGE_NAMES)
    assert set(video.model_versions) == set(STAGE_NAMES)
    assert sorted(video.notices) == sorted(f"{stage} was here" for stage in STAGE_NAMES)


@pytest.mark.django_db(transaction=True)
def test_status_shows_where_each_branch_is(recorded, monkeypatch):
    seen: list[str] = []
    original = stages.STAGES["asr"]

    def asr(ctx) -> None:
        ctx.progress(0.5)
        seen.append(progress.branch_cells(Video.objects.get(pk=ctx.video.pk)))
        original(ctx)

    monkeypatch.setitem(stages.STAGES, "asr", asr)
    video = new_video("talk")
    tasks.enqueue_video(str(video.pk))

    (cells,) = seen
    assert "audio asr 50%" in cells, cells  # asr is stage 2 of 3, half done
    assert "visual " in cells, cells
    video.refresh_from_db()
    assert progress.branch_cells(video) == "-"  # ready: no branch is running


@pytest.mark.django_db(transaction=True)
def test_a_failed_branch_fails_the_video_and_nothing_joins(recorded, monkeypatch):
    def broken(ctx) -> None:
        raise pipeline.PermanentError("The audio track could not be decoded.")

    monkeypatch.setitem(stages.STAGES, "audio", broken)
    video = new_video("broken audio")
    tasks.enqueue_video(str(video.pk))

    video.refresh_from_db()
    assert video.status == VideoStatus.FAILED
    assert video.error == "audio: The audio track could not be decoded."
    names = {stage for stage, *_ in recorded}
    assert not names & {"asr", "segments", "embed", "index"}


@pytest.mark.django_db(transaction=True)
def test_ending_a_branch_again_queues_embed_only_once(monkeypatch):
    video = new_video("redelivered")
    Video.objects.filter(pk=video.pk).update(status=VideoStatus.PROCESSING, stage="segments",
                                             visual_stage="done", audio_stage="done")
    first = pipeline.following(str(video.pk), "segments", "skipped")
    again = pipeline.following(str(video.pk), "clip", "ran")
    assert (first, again) == (("embed",), ())
    assert Video.objects.get(pk=video.pk).stage == "embed"
    assert pipeline.run_stage(str(video.pk), "segments") == "skipped"


@pytest.mark.django_db(transaction=True)
def test_a_branch_waits_for_the_other_before_embed(monkeypatch):
    video = new_video("half way")
    Video.objects.filter(pk=video.pk).update(status=VideoStatus.PROCESSING, stage="clip",
                                             visual_stage="done", audio_stage="asr")
    assert pipeline.following(str(video.pk), "clip", "ran") == ()
    assert pipeline.following(str(video.pk), "keyframes", "ran") == ("concepts",)
    assert pipeline.following(str(video.pk), "probe", "ran") == ("keyframes", "audio")
