"""Run a command as `python -m <module> [args]` does and print, as its last line, a JSON object of what it touched:
`read`, the files under data/ and models/ it read (opened for reading, seen by an audit hook on every `open`, less
those it wrote itself), and `packages`, the top-level packages it imported.

    python -m tests.stage_footprint stages.evaluate
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


def main(module: str, arguments: list[str]) -> None:
    read, written = set(), set()

    def audit(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            path = os.path.relpath(os.fsdecode(args[0]))
            if path.startswith(WATCHED):
                (read if reads(args[1], args[2]) else written).add(path)

    sys.addaudithook(audit)
    sys.argv = [module, *arguments]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        if exit.code:
            raise
    finally:
        packages = {name.split(".")[0] for name in sys.modules}
        print(json.dumps({"read": sorted(read - written), "packages": sorted(packages)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
