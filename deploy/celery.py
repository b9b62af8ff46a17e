"""The Celery app: settings from Django's CELERY_* namespace, tasks from the workers app.

Celery beat (`celery -A deploy beat`, or a worker started with `-B`) runs the reconciler,
`reelsearch.recover_stuck_videos` (workers/recover.py), every
REELSEARCH["RECOVER_EVERY_SECONDS"]: it requeues videos a dead worker or a lost message left
pending or processing.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploy.settings")

RECOVER_TASK = "reelsearch.recover_stuck_videos"
RECOVER_ENTRY = "recover-stuck-videos"

app = Celery("reelsearch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])


@app.on_after_configure.connect
def schedule_reconciler(sender: Celery, **kwargs) -> None:
    """Add the reconciler to the beat schedule (read lazily: settings import this module)."""
    from django.conf import settings

    every = float(settings.REELSEARCH["RECOVER_EVERY_SECONDS"])
    # A run missed while no worker was up is worthless once the next one is due.
    sender.add_periodic_task(every, sender.signature(RECOVER_TASK), name=RECOVER_ENTRY,
                             expires=every)
