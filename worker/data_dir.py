"""The data directory holds patient data (the order book, Temporal's database) and the API token:
only its owner may read it.

Every process that writes there sets its umask to 077 first (:func:`private_umask`), so what it
creates is 0700 (folders) or 0600 (files), the SQLite ``-wal`` and ``-shm`` files and the
Temporal dev server's files included. At start each process checks the directory
(:func:`secure_data_dir`): a folder or file that group or others could reach is *fixed* (0700 or
0600) and a warning names it, since it may have been read already (rotate the API token if its
file was exposed). A directory that belongs to another user is refused: its owner could read
everything written there, and we could not fix it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("vcf.data_dir")
PRIVATE_UMASK = 0o077


class DataDirError(RuntimeError):
    """The data directory cannot be made private (another user owns it, or it is not a directory)."""


def private_umask() -> None:
    """Files and folders this process creates are its owner's only."""
    os.umask(PRIVATE_UMASK)


def secure_data_dir(path: Path) -> list[str]:
    """Create ``path`` (0700) or make it and everything in it private; return what was fixed.

    Raises :class:`DataDirError` if it is not a directory or belongs to another user.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise DataDirError(f"data directory {path} is not a directory (VCF_DATA_DIR)")
    if info.st_uid != os.geteuid():
        raise DataDirError(f"data directory {path} belongs to user id {info.st_uid}, not to this process's "
                           f"({os.geteuid()}): its owner could read the patient data and the token kept there. "
                           "Use a directory of this user's own (VCF_DATA_DIR).")
    fixed = []
    for item in [path, *sorted(path.rglob("*"))]:
        mode = item.lstat().st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            continue
        private = 0o700 if stat.S_ISDIR(mode) else 0o600
        os.chmod(item, private)
        fixed.append(f"{item} was mode {stat.S_IMODE(mode):04o}, now {private:04o}")
    for line in fixed:
        log.warning("data directory was readable by group or others; fixed (rotate the API token if its file was "
                    "exposed)", extra={"fixed": line})
    return fixed
