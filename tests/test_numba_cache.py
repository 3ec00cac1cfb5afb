"""stages.numba_cache: checkouts of the same code at different paths share one numba cache (a worker's clones)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.scratch_repo import REPO

# The forward kernel's first call in a fresh process, and whether numba's cache had it.
FORWARD = """
import json
import numpy as np
from stages import fused
theta = np.zeros((1, fused.Layout(1).size), np.float32)
fused.probability_of_one(theta, np.zeros((1, 1), np.uint8))
stats = fused.forward_chunks.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def forward_in_checkout(checkout: Path, cache: Path) -> dict:
    env = os.environ | {
        "NUMBA_CACHE_DIR": str(cache),
        "NUMBA_CACHE_LOCATOR_CLASSES": "stages.numba_cache.SourceKeyedCacheLocator",
    }
    command = [sys.executable, "-c", FORWARD]
    result = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_a_second_checkout_at_another_path_loads_what_the_first_compiled(tmp_path: Path):
    for checkout in ("first", "second"):
        shutil.copytree(REPO / "stages", tmp_path / checkout / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "numba"
    assert forward_in_checkout(tmp_path / "first", cache) == {"hits": 0, "misses": 1}
    assert forward_in_checkout(tmp_path / "second", cache) == {"hits": 1, "misses": 0}
    assert not list((tmp_path / "second").rglob("*.nbi"))  # nothing compiled beside the second checkout
