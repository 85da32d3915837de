"""The one error type of the builders, and which of its codes are the user's to fix."""

# Codes whose cause lies in the user's repository; anything else is the platform's.
USER_FAULT_CODES = frozenset(
    {
        "detect_failed",
        "build_failed",
        "dockerfile_error",
        "procfile_invalid",
        "base_image_missing",
        "base_image_refused",
        "build_out_of_memory",
        "build_timeout",
        "build_context_too_large",
        "image_too_large",
        "build_pids_exceeded",
        "build_disk_exceeded",
        "remote_add_refused",
    }
)


class BuildError(Exception):
    """A build that failed. `code` is stable; the message is safe to show to the user."""

    def __init__(self, code: str, message: str, user_fault: bool | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.user_fault = code in USER_FAULT_CODES if user_fault is None else user_fault
