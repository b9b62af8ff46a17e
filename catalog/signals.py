"""Saving a new video enqueues its processing once the transaction commits."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Video


@receiver(post_save, sender=Video, dispatch_uid="catalog.enqueue_processing")
def enqueue_processing(sender, instance: Video, created: bool, **kwargs) -> None:
    """Enqueue the pipeline for a newly created video."""
    if created and not kwargs.get("raw"):
        from workers.tasks import enqueue_video

        video_id = str(instance.pk)
        transaction.on_commit(lambda: enqueue_video(video_id))


@receiver(post_delete, sender=Video, dispatch_uid="catalog.unindex_deleted")
def unindex_deleted(sender, instance: Video, **kwargs) -> None:
    """Remove a deleted video's segments from the search index."""
    from workers.tasks import enqueue_unindex

    video_id = str(instance.pk)
    transaction.on_commit(lambda: enqueue_unindex(video_id))
