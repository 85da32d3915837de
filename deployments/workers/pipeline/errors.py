"""One error type for the pipeline: whatever an adapter raised, with a stable code."""


class StepFailed(Exception):
    def __init__(self, code: str, message: str, user_fault: bool):
        super().__init__(message)
        self.code, self.message, self.user_fault = code, message, user_fault


class Cancelled(Exception):
    """The deployment was cancelled (or superseded) while it ran."""


def as_step_failure(exc: BaseException) -> StepFailed | None:
    """Adapters' errors all carry `code` and `user_fault`; turn them into StepFailed."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and hasattr(exc, "user_fault"):
        message = getattr(exc, "message", None) or str(exc)
        tail = getattr(exc, "logs_tail", "")
        if tail:
            message = f"{message}\n--- last output ---\n{tail}"
        return StepFailed(code, message, bool(exc.user_fault))
    return None
