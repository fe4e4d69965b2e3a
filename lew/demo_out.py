"""`lew demo --out DIR`: the folder holds the results of the last run only, and never loses a file lew did not write.

Each run lists what it writes in `DIR/.lew-demo.json`. The next run deletes exactly those files (and the folders
they leave empty) before it starts, so results of an earlier run cannot sit beside a summary that does not mention
them. A folder that holds anything else (files the user put there, or an older lew's results, which were never
listed) is refused rather than cleared: lew never guesses which files are its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from lew.errors import LewError
from lew.files import create_folder

RECORD_NAME = ".lew-demo.json"


class DemoOut:
    """The `--out` folder of one run: cleared of the last run's files at `prepare`, then recording what it gets."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._written: list[str] = []

    @property
    def record(self) -> Path:
        return self.folder / RECORD_NAME

    def prepare(self) -> None:
        """Create the folder, or delete the files the last run listed; refuse, untouched, a folder with more."""
        create_folder(self.folder, label="--out")
        listed = self._listed()
        if listed is None:
            if any(self.folder.iterdir()):
                raise LewError(
                    f"--out {self.folder}: holds files lew demo did not write (no {RECORD_NAME}); "
                    "empty it or choose another --out (lew only deletes what it wrote)"
                )
            listed = []
        # Check first, delete after: a refused run leaves the folder exactly as it found it.
        own = {path.resolve() for path in listed} | {
            self.record.resolve(),
            self.record.with_suffix(".tmp").resolve(),  # a save cut short
        }
        strangers = sorted(
            str(path.relative_to(self.folder))
            for path in self.folder.rglob("*")
            if (path.is_file() or path.is_symlink()) and path.resolve() not in own
        )
        if strangers:
            raise LewError(
                f"--out {self.folder}: holds files lew demo did not write ({', '.join(strangers[:3])}"
                f"{', ...' if len(strangers) > 3 else ''}); move them or choose another --out"
            )
        for path in listed:
            if path.is_file() or path.is_symlink():
                path.unlink()
        self._remove_emptied_folders(listed)
        self.record.unlink(missing_ok=True)
        self.record.with_suffix(".tmp").unlink(missing_ok=True)
        self._save()

    def add(self, paths: Iterable[Path]) -> None:
        """Record files this run wrote (at once: an interrupted run still lists what it left)."""
        root = self.folder.resolve()
        for path in paths:
            relative = str(path.resolve().relative_to(root))
            if relative not in self._written:
                self._written.append(relative)
        self._save()

    def _save(self) -> None:
        partial = self.record.with_suffix(".tmp")
        partial.write_text(json.dumps({"files": self._written}, indent=1) + "\n", encoding="utf-8")
        partial.replace(self.record)

    def _listed(self) -> list[Path] | None:
        """The last run's files, each inside the folder (a record naming anything else is not trusted)."""
        try:
            document = json.loads(self.record.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise LewError(f"--out {self.folder}: {RECORD_NAME} is unreadable ({error}); delete it") from None
        root = self.folder.resolve()
        listed = []
        for name in document.get("files", []) if isinstance(document, dict) else []:
            path = (root / str(name)).resolve()
            if path.is_relative_to(root) and path != root:
                listed.append(path)
        return listed

    def _remove_emptied_folders(self, files: Iterable[Path]) -> None:
        root = self.folder.resolve()
        folders = {
            parent for path in files for parent in path.parents if parent.is_relative_to(root) and parent != root
        }
        for folder in sorted(folders, key=lambda item: len(item.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
