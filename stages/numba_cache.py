"""numba's cache for copies of this code: every checkout of the same source shares one compiled copy.

numba keeps `cache=True` functions beside their source (`stages/__pycache__/`), or with NUMBA_CACHE_DIR set, in a
folder named after the source's path; either way a fresh checkout at a new path compiles the kernels again (~18 s).
This locator names the folder after the source file's content instead, so checkouts of the same code share it:

    NUMBA_CACHE_DIR=~/.cache/parity-lstm NUMBA_CACHE_LOCATOR_CLASSES=stages.numba_cache.SourceKeyedCacheLocator

numba still checks each entry against the source's hash and its own version, so a changed source compiles anew.
"""

import hashlib
from pathlib import Path

from numba.core.caching import UserProvidedCacheLocator


class SourceKeyedCacheLocator(UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR/<file name>-<sha256 of its content>; not used where NUMBA_CACHE_DIR is unset."""

    @classmethod
    def get_suitable_cache_subpath(cls, py_file: str) -> str:
        source = Path(py_file)
        return f"{source.stem}-{hashlib.sha256(source.read_bytes()).hexdigest()[:16]}"
