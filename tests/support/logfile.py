"""Reading the log files of the servers the tests start (PostgreSQL, pgpool, sshd)."""

import os


def read_from(path, since=0):
    """The file's text from byte offset `since` ("" when it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")
    except (OSError, TypeError):
        return ""


def size(path):
    """The file's size in bytes (0 when it does not exist yet)."""
    try:
        return os.path.getsize(path)
    except (OSError, TypeError):
        return 0
