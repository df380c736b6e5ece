"""Who holds a Disk cache's metatile locks: one file per process in the cache's root.

A Disk cache's lock is TileStache's empty directory beside the tile, which a bare
TileStache removes with ``os.rmdir``: nothing can go inside it. Its holder is recorded
instead in a file of the holder's process, ``<cache root>/.tilestatus-lock-holders/
<pid>.<random>``: a first line naming the process, then one line per lock it holds,
``<lock path>``, a tab and ``<holder text>``, the whole ended by a NUL byte (what
follows it is left over from a longer content). The file is made the first time the
process takes a lock in that cache, and each lock taken or released rewrites it in place
with one ``pwrite``: a note file made and removed beside every lock would cost a new
inode and two directory entries per cold tile, some 30 µs more CPU (docs/performance.md).

A live process's file may be read while it is rewritten (a torn read); that is harmless,
as every line of it names the same live process, and a live holder's lock is never
broken. A dead process's file no longer changes. Its lines are removed when the lock
they name is broken (``drop``), and the file when nothing is left in it or, at a waiter's
look-up, when none of its locks stands (``locks``); a process that ends cleanly removes
its own file at exit (``atexit``).

Core module: imports the standard library only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

#: The folder of holder files in a Disk cache's root.
FOLDER = ".tilestatus-lock-holders"
#: Bytes of a holder file read at most (a line per lock a process holds at once).
READ_MOST = 1 << 20
#: Ends a file's content; what follows is left over from a longer one.
END = "\0"


def folder_of(cache_root: str) -> str:
    return os.path.join(cache_root, FOLDER)


@dataclass(frozen=True)
class Holder:
    """A line of a holder file: the lock at ``path`` is held as ``text`` says."""

    #: The holder file's name in its folder.
    file: str
    path: str
    text: str


class HolderFile:
    """This process's holder file in one folder."""

    def __init__(self, folder: str, header: str):
        self.folder = folder
        self.name = f"{os.getpid()}.{uuid.uuid4().hex[:12]}"
        self.header = header
        #: The locks this process holds in the cache: path -> holder text.
        self.held: dict[str, str] = {}
        self._lock = threading.Lock()
        self.fd = self._create()

    def _create(self) -> int:
        path = os.path.join(self.folder, self.name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileNotFoundError:
            os.makedirs(self.folder, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.pwrite(fd, self._content(), 0)
        return fd

    def _content(self) -> bytes:
        lines = [self.header, *(f"{path}\t{text}" for path, text in self.held.items())]
        return ("\n".join(lines) + "\n" + END).encode()

    def add(self, path: str, text: str, replace: bool = False) -> bool:
        """Record that this process holds the lock at ``path``, unless it does already
        (another of its threads, whose line stays unless ``replace``): whether this added
        it. A path or text that would break the file's lines is not recorded."""
        if "\n" in path or "\t" in path or "\n" in text or END in path + text:
            return False
        with self._lock:
            if path in self.held and not replace:
                return False
            self.held[path] = text
            self._write()
        return True

    def remove(self, path: str) -> None:
        """This process no longer holds the lock at ``path``."""
        with self._lock:
            if self.held.pop(path, None) is not None:
                self._write()

    def _write(self) -> None:
        with contextlib.suppress(OSError):  # unrecorded, the lock still works
            os.pwrite(self.fd, self._content(), 0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.folder, self.name))


_files: dict[str, HolderFile | None] = {}
_files_lock = threading.Lock()


def own_file(folder: str, header: str) -> HolderFile | None:
    """This process's holder file in ``folder``, made on first use (None where it
    cannot be made: the locks go on unrecorded)."""
    try:
        return _files[folder]
    except KeyError:
        pass
    with _files_lock:
        if folder not in _files:
            try:
                _files[folder] = HolderFile(folder, header)
            except OSError:
                _files[folder] = None
        return _files[folder]


def held_here(folder: str, path: str) -> bool:
    """Whether this process records the lock at ``path`` as its own."""
    own = _files.get(folder)
    return own is not None and path in own.held


def forget(folder: str, path: str) -> None:
    """This process no longer holds the lock at ``path`` (if it recorded it)."""
    own = _files.get(folder)
    if own is not None and path in own.held:
        own.remove(path)


def _read(folder: str, name: str) -> list[str] | None:
    """A holder file's lines (its header first), or None if it cannot be read."""
    try:
        with open(os.path.join(folder, name), "rb") as file:
            raw = file.read(READ_MOST)
    except OSError:
        return None
    text, ended, _ = raw.decode("utf-8", "replace").partition(END)
    if not ended or not text.endswith("\n"):
        return None  # cut short
    return text[:-1].split("\n")


def files(folder: str) -> Iterator[tuple[str, str, list[Holder]]]:
    """Every readable holder file in ``folder``: its name, header and lines."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        lines = _read(folder, name)
        if not lines:
            continue
        holders = []
        for line in lines[1:]:
            path, tab, text = line.partition("\t")
            if tab:
                holders.append(Holder(name, path, text))
        yield name, lines[0], holders


def holders_of(folder: str, path: str) -> list[Holder]:
    """The lines of every process's file that record the lock at ``path``."""
    return [holder for _, _, held in files(folder) for holder in held if holder.path == path]


def drop(folder: str, holder: Holder) -> None:
    """Remove a dead process's line (and its file once nothing is left in it)."""
    own = _files.get(folder)
    if own is not None and own.name == holder.file:
        own.remove(holder.path)
        return
    lines = _read(folder, holder.file)
    if lines is None:
        return
    kept = [line for line in lines[1:] if line != f"{holder.path}\t{holder.text}"]
    path = os.path.join(folder, holder.file)
    with contextlib.suppress(OSError):
        if not kept:
            os.unlink(path)
            return
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, ("\n".join([lines[0], *kept]) + "\n" + END).encode(), 0)
        finally:
            os.close(fd)


def remove_file(folder: str, name: str) -> None:
    """Remove a dead process's file."""
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(folder, name))


@atexit.register
def _close_all() -> None:
    with _files_lock:
        for own in _files.values():
            if own is not None:
                own.close()
        _files.clear()


def _after_fork_in_child() -> None:
    # The parent's files are the parent's: the child makes its own.
    global _files_lock
    _files.clear()
    _files_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
