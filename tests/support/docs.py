"""The file blocks of a documentation page: the files a reader is told to save.

A page marks such a block with an HTML comment naming the file, just before the
fenced block: ``<!-- file: mysite/demo_tiles.py -->`` (save it as that file) or
``<!-- append: mysite/settings.py -->`` (add it at the end of that file). Tests
write them as a reader would, so the page shows files known to work.
"""

from __future__ import annotations

import re
from pathlib import Path

#: ``<!-- file: path -->`` or ``<!-- append: path -->``, then a fenced block.
FILE_BLOCK = re.compile(r"<!-- (file|append): (\S+) -->\n```\w*\n(.*?)```", re.S)


def documented_files(page: Path) -> list[tuple[str, str, str]]:
    """``(action, path, text)`` for each file block of ``page``, in the page's order."""
    blocks = FILE_BLOCK.findall(page.read_text(encoding="utf-8"))
    assert blocks, f"{page.name} has no file blocks"
    return blocks


def write_documented_files(page: Path, folder: Path) -> list[str]:
    """Write the file blocks of ``page`` under ``folder`` as a reader would; their paths."""
    written = []
    for action, name, text in documented_files(page):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a" if action == "append" else "w", encoding="utf-8") as file:
            file.write(("\n" if action == "append" else "") + text)
        written.append(name)
    return written
