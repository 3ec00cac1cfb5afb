"""Run a stage as `python -m stages.<name>` does and print, as its last line, the files under data/ and models/ it
read (a JSON list): those it opened for reading, seen by an audit hook on every `open`, less those it wrote itself.

    python -m tests.opened_files evaluate
"""

import json
import os
import runpy
import sys

WATCHED = ("data/", "models/")


def reads(mode: str | None, flags: int) -> bool:
    """Whether an `open` audit event opens for reading only: by `open()`'s mode, or else by `os.open`'s flags."""
    if mode is not None:
        return "r" in mode and "+" not in mode
    return flags & (os.O_WRONLY | os.O_RDWR) == 0


def main(stage: str) -> None:
    read, written = set(), set()

    def audit(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            path = os.path.relpath(os.fsdecode(args[0]))
            if path.startswith(WATCHED):
                (read if reads(args[1], args[2]) else written).add(path)

    sys.addaudithook(audit)
    try:
        runpy.run_module(f"stages.{stage}", run_name="__main__", alter_sys=True)
    finally:
        print(json.dumps(sorted(read - written)))


if __name__ == "__main__":
    main(sys.argv[1])
