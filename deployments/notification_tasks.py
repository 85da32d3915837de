"""Celery tasks for notifications: thin. The delivery row, not Celery, counts the attempts."""

from celery import shared_task

__all__ = ["deliver_notification", "email_notification"]

# A receiver that drips its answer must not hold a worker slot for long.
DELIVERY_SOFT_LIMIT = 60


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=None,
    soft_time_limit=DELIVERY_SOFT_LIMIT,
    time_limit=DELIVERY_SOFT_LIMIT + 30,
)
def deliver_notification(self, delivery_id: int, attempt: int = 1) -> str:
    from deployments.services.notifications import attempt_delivery

    delay = attempt_delivery(delivery_id, attempt)
    if delay is None:
        return "done"
    # The next attempt carries its number: a copy of this message (redelivered after a
    # worker died) finds the attempt already made and does nothing.
    raise self.retry(args=(delivery_id, attempt + 1), countdown=delay)


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=6,
)
def email_notification(app_id: int, body: str) -> bool:
    from deployments.services.notifications import email_owner

    return email_owner(app_id, body)
