"""Uploaded files, copied under DATA_DIR for the job that reads them.

The size checked here is the file as sent; what a compressed file expands to is bounded by the
parsers as they read it (`max_bytes`, see app.upload_store), and a refused upload is removed.
"""

import shutil
import uuid
from pathlib import Path

from fastapi import UploadFile

from app.settings import get_settings


def save_upload(upload: UploadFile) -> Path:
    """Copies the upload under DATA_DIR with a random name that keeps the file's suffixes."""
    folder = get_settings().upload_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{''.join(Path(upload.filename or '').suffixes)[-16:]}"
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, length=1024 * 1024)
    return path


def upload_error(upload: UploadFile | None, *, required: bool) -> str | None:
    """What is wrong with an upload before it is saved (missing, empty, too big), or None."""
    limit_mb = get_settings().MAX_UPLOAD_MB
    if upload is None or not upload.filename:
        return "Choose a file to upload." if required else None
    size = upload.size
    if size is None:  # not given by the form parser: measure the spooled file instead
        size = upload.file.seek(0, 2)
        upload.file.seek(0)
    if size == 0:
        return f"'{upload.filename}' is empty."
    if size > limit_mb * 1024 * 1024:
        return f"'{upload.filename}' is {size / 2**20:.1f} MB, over the {limit_mb} MB limit."
    return None
