"""A command for the DAG tasks' tests: print a first line, wait until the file given exists (two minutes at most),
then print a second line.

    python -m tests.first_line_then_wait GO_FILE
"""

import sys
import time
from pathlib import Path

if __name__ == "__main__":
    print("first", flush=True)
    deadline = time.monotonic() + 120
    while not Path(sys.argv[1]).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    print("second")
