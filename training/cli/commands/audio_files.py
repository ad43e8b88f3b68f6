"""The audio files named on the command line: files as given, folders searched recursively."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["AUDIO_EXTENSIONS", "find_audio_files"]

# What soundfile (libsndfile >= 1.1) decodes; other files inside folders are skipped.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")


def find_audio_files(paths: Sequence[str | Path]) -> list[str]:
    """Every audio file under `paths`, in the order given, each folder's files sorted.

    A path that is not a folder is kept as it is, whatever its extension and even if it does not exist, so that
    the command reports it as a failed file instead of silently dropping it.

    Raises:
        ValueError: the paths are folders without a single audio file (the CLI exits with status 2).
    """
    files: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(
                str(found) for found in path.rglob("*") if found.is_file() and found.suffix.lower() in AUDIO_EXTENSIONS
            )
        else:
            files.append(str(path))
    if not files:
        named = ", ".join(repr(str(path)) for path in paths) or "no path"
        raise ValueError(
            f"no audio files found in {named} (folders are searched recursively for "
            f"{', '.join(AUDIO_EXTENSIONS)}); pass audio files or folders that hold some"
        )
    return list(dict.fromkeys(files))  # a file named twice is processed once
