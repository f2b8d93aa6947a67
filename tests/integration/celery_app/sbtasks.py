"""The Celery application the Celery tests run in a worker process: tasks that add, retry
with a countdown, fail for good, and take long enough to be interrupted. Configured from the
environment: AMQP_URL (the broker) and SB_CELERY_DIR (where the tasks leave marker files)."""
import os
import pathlib
import time

from celery import Celery
from celery.exceptions import Reject
from kombu import Exchange, Queue

app = Celery("sbtasks", broker=os.environ["AMQP_URL"], backend="rpc://")
app.conf.update(
    task_default_queue="sb-celery",
    task_queues=[
        Queue("sb-celery"),
        Queue("sb-celery-high"),
        Queue("sb-celery-work", queue_arguments={"x-dead-letter-exchange": "sb-celery-dlx"}),
    ],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    result_expires=60,
)
MARKS = pathlib.Path(os.environ.get("SB_CELERY_DIR", "."))


@app.task
def add(x, y):
    return x + y


@app.task(bind=True, max_retries=5)
def flaky(self, fail_times):
    """Fails fail_times times, retrying after 0.2 s each time; then reports the tries."""
    if self.request.retries < fail_times:
        raise self.retry(countdown=0.2, exc=RuntimeError("not yet"))
    return f"ok after {self.request.retries} retries"


@app.task(bind=True)
def slow_once(self, token):
    """The first delivery marks that it started and then hangs (to be killed); a
    redelivery finishes at once and reports whether the broker flagged it redelivered."""
    mark = MARKS / f"{token}.started"
    if not mark.exists():
        mark.write_text(str(os.getpid()))
        time.sleep(60)
    return {"redelivered": bool(self.request.delivery_info.get("redelivered"))}


@app.task
def poison(order):
    """Rejects its message without requeueing: the queue's dead-letter exchange gets it."""
    raise Reject(f"cannot process order {order}", requeue=False)
