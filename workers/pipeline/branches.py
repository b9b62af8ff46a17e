"""The pipeline's two branches, which run concurrently between probe and embed.

    probe -+-> visual: keyframes -> concepts -> ocr -> clip -+-> embed -> chapters -> index
           +-> audio:  audio -> asr -> segments -------------+

Each branch keeps its own place on the video row, so the branches never overwrite each
other: `<branch>_stage` (the stage queued or running; "" before probe has ended, "done"
once the branch's last stage ended), `<branch>_progress` (0..1) and `<branch>_attempts`
(starts of its current stage that never ended). The branch that ends second wins a
compare-and-set on the row (`join`) and queues embed: exactly once, even when a redelivered
task ends a branch again. A Celery chord would do the same with a result backend, and
counts a redelivered (acks_late) header task twice.

Rows written by the earlier, linear pipeline (every stage in STAGE_NAMES order, no branch
columns) are read through `position`, which infers a branch's place from `Video.stage`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F
from django.utils import timezone

from catalog.models import Video, VideoStatus

from .stages import STAGES

STAGE_NAMES: tuple[str, ...] = tuple(STAGES)
DONE = "done"
IN_FLIGHT = (VideoStatus.PENDING, VideoStatus.PROCESSING)


@dataclass(frozen=True)
class Branch:
    """A run of stages that goes on beside the other branch."""

    name: str
    stages: tuple[str, ...]

    @property
    def stage_field(self) -> str:
        """Return the Video field holding the branch's stage."""
        return f"{self.name}_stage"

    @property
    def progress_field(self) -> str:
        """Return the Video field holding the branch's progress."""
        return f"{self.name}_progress"

    @property
    def attempts_field(self) -> str:
        """Return the Video field counting starts of the branch's stage."""
        return f"{self.name}_attempts"

    def fraction(self, stage: str, done: float) -> float:
        """Return the branch's progress when `stage` is `done` (0..1) through."""
        return (self.stages.index(stage) + max(0.0, min(done, 1.0))) / len(self.stages)


BRANCHES = (Branch("visual", ("keyframes", "concepts", "ocr", "clip")),
            Branch("audio", ("audio", "asr", "segments")))
BEFORE = ("probe",)  # runs before the branches
AFTER = ("embed", "chapters", "index")  # run once both branches ended
assert (*BEFORE, *(s for b in BRANCHES for s in b.stages), *AFTER) == STAGE_NAMES, STAGE_NAMES


def branch_of(stage: str) -> Branch | None:
    """Return the branch a stage belongs to (None for probe, embed, chapters and index)."""
    return next((branch for branch in BRANCHES if stage in branch.stages), None)


def branch_starts() -> tuple[str, ...]:
    """Return the first stage of every branch (queued together once probe has ended)."""
    return tuple(branch.stages[0] for branch in BRANCHES)


def position(video: Video, branch: Branch) -> str:
    """Return the branch's stage on the row: a stage, "done", or "" (not started)."""
    recorded = getattr(video, branch.stage_field)
    if recorded:
        return recorded
    if video.stage in branch.stages:  # a row of the linear pipeline
        return video.stage
    if video.stage in STAGE_NAMES and (STAGE_NAMES.index(video.stage)
                                       > STAGE_NAMES.index(branch.stages[-1])):
        return DONE
    return ""


def settle(video: Video) -> None:
    """Record the places `position` infers for a row of the linear pipeline."""
    for branch in BRANCHES:
        inferred = position(video, branch)
        if inferred and not getattr(video, branch.stage_field):
            Video.objects.filter(pk=video.pk, **{branch.stage_field: ""}).update(
                **{branch.stage_field: inferred})
            setattr(video, branch.stage_field, inferred)


def is_past(video: Video, stage: str) -> bool:
    """Return True when the stage's branch has moved past it (or ended)."""
    branch = branch_of(stage)
    assert branch is not None, f"{stage} is not a branch stage"
    at = position(video, branch)
    return at == DONE or (at in branch.stages
                          and branch.stages.index(at) > branch.stages.index(stage))


def start_places(first: str) -> dict[str, object]:
    """Return the branch fields of a run that starts at `first`.

    Branches before `first` in STAGE_NAMES order are done, the branch holding it starts
    there, branches after it start from their first stage; a run from probe starts none.
    """
    fields: dict[str, object] = {}
    for branch in BRANCHES:
        if first in BEFORE:
            at = ""
        elif first in branch.stages:
            at = first
        elif STAGE_NAMES.index(first) > STAGE_NAMES.index(branch.stages[-1]):
            at = DONE
        else:
            at = branch.stages[0]
        progress = 1.0 if at == DONE else branch.fraction(at, 0.0) if at else 0.0
        fields |= {branch.stage_field: at, branch.progress_field: progress,
                   branch.attempts_field: 0}
    return fields


def entry_stages(first: str) -> tuple[str, ...]:
    """Return the stages to queue for a run that starts at `first`."""
    places = start_places(first)
    if first in BEFORE or first in AFTER:
        return (first,)
    return tuple(str(places[b.stage_field]) for b in BRANCHES if places[b.stage_field] != DONE)


def resume_stages(video: Video) -> tuple[str, ...]:
    """Return the stages to requeue a stuck video from (the reconciler, workers/recover.py)."""
    if video.stage in AFTER:
        return (video.stage,)
    places = [(branch, position(video, branch)) for branch in BRANCHES]
    if not any(at for _, at in places):
        return BEFORE[:1]
    waiting = tuple(at or branch.stages[0] for branch, at in places if at != DONE)
    return waiting or AFTER[:1]  # both ended: the join's winner died before queueing embed


def overall(video: Video, stage: str, done: float) -> float:
    """Return the whole run's progress (0..1) when `stage` is `done` through."""
    if branch_of(stage) is None:
        return round((STAGE_NAMES.index(stage) + max(0.0, min(done, 1.0))) / len(STAGE_NAMES), 4)
    total = len(BEFORE) + sum(
        len(b.stages) * (b.fraction(stage, done) if stage in b.stages
                         else float(getattr(video, b.progress_field) or 0.0))
        for b in BRANCHES)
    return round(total / len(STAGE_NAMES), 4)


def report(video: Video, stage: str, done: float) -> None:
    """Record a branch stage's progress, and the run's, without touching the other branch."""
    branch = branch_of(stage)
    assert branch is not None, f"{stage} is not a branch stage"
    mine = branch.fraction(stage, done)
    others = [b for b in BRANCHES if b is not branch]
    total = F(others[0].progress_field) * len(others[0].stages) + (
        len(BEFORE) + len(branch.stages) * mine)
    Video.objects.filter(pk=video.pk).update(
        **{branch.progress_field: mine}, progress=total / float(len(STAGE_NAMES)))
    setattr(video, branch.progress_field, mine)
    video.progress = overall(video, stage, done)


def join(video_id: str) -> bool:
    """Return True for the one caller that sees both branches ended (it queues embed)."""
    ended = {branch.stage_field: DONE for branch in BRANCHES}
    return bool(Video.objects.filter(pk=video_id, status__in=IN_FLIGHT, **ended)
                .exclude(stage__in=AFTER)
                .update(stage=AFTER[0], updated_at=timezone.now()))
