"""Where uploads wait for the job that reads them, and how much they may hold.

Shared by the web app (which saves uploads) and the worker (which reads and then removes
them), so it imports neither the web framework nor the task queue.
"""

from pathlib import Path

from app.settings import get_settings


def upload_byte_limit() -> int:
    """MAX_UPLOAD_MB in bytes: what an upload may hold, and also what it may expand to."""
    return get_settings().MAX_UPLOAD_MB * 2**20


def remove_upload(path: str | Path | None) -> None:
    """Deletes a saved upload once nothing needs it; a path outside the upload folder (the
    operator's own file, named on the command line) is never touched."""
    if not path:
        return
    file = Path(path)
    if file.resolve().parent == get_settings().upload_dir.resolve():
        file.unlink(missing_ok=True)
