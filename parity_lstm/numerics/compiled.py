"""The kernels' compiler: numba, with one cache of compiled kernels per user and machine, shared by every checkout of
the same source (fresh clones, queued experiments, Airflow tasks), named after each source file's content.

    PARITY_LSTM_CACHE_DIR    the cache folder (default: $XDG_CACHE_HOME/parity-lstm, else ~/.cache/parity-lstm)

A cache folder that cannot be written, or an entry that cannot be read (truncated, corrupt), costs a compile, never a
run: one line on stderr says so. numba still keys each entry by the source's hash, its own version and the CPU, so a
changed source or another CPU compiles anew. `python -m parity_lstm.numerics.precompile` fills the cache.
"""

import hashlib
import os
import sys
from contextlib import suppress
from functools import cache
from pathlib import Path

import numba
from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator, _SourceFileBackedLocatorMixin
from numba.core.dispatcher import Dispatcher
from numba.core.runtime import rtsys
from numba.core.serialize import dumps

# numba's "numpy" error model: a division by zero gives inf or nan, with no check and branch in every loop. Of
# fast-math, only "no NaN, no infinity" (no value the kernels make is either): min and max then compile to single
# vector instructions. Never reassociation or fused multiply-add, which would change the bits from one CPU to another.
OPTIONS = {"nogil": True, "error_model": "numpy", "fastmath": {"nnan", "ninf"}}


def cache_folder() -> Path:
    """The machine's cache of compiled kernels for this user."""
    if folder := os.environ.get("PARITY_LSTM_CACHE_DIR"):
        return Path(folder)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "parity-lstm"


@cache  # once a process, however many kernels it concerns
def notice(problem: str) -> None:
    print(f"parity-lstm: {problem}; compiling in this process instead", file=sys.stderr, flush=True)


# What decides a kernel's machine code besides its own file: the layout's offsets, PAD, the compile options, the forward
# pass's helpers (which the training kernels call), a lane's tanh. numba keys a cache entry by the kernel's own file
# only.
COMPILED_IN = ("model.py", "data/encoding.py", "numerics/compiled.py", "numerics/forward.py", "numerics/scalar.py")
PACKAGE = Path(__file__).resolve().parents[1]


class SourceKeyedLocator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """cache_folder()/numba/<file name>-<sha256 of its content and of COMPILED_IN>: checkouts of the same source
    share it, and a change to any of those files compiles anew."""

    def __init__(self, py_func, py_file: str):
        self._py_file, self._lineno = py_file, py_func.__code__.co_firstlineno
        sources = [Path(py_file), *(PACKAGE / name for name in COMPILED_IN)]
        digest = hashlib.sha256(b"".join(source.read_bytes() for source in sources)).hexdigest()[:16]
        self._cache_path = str(cache_folder() / "numba" / f"{Path(py_file).stem}-{digest}")

    def get_cache_path(self) -> str:
        return self._cache_path

    @classmethod
    def from_function(cls, py_func, py_file: str):
        locator = cls(py_func, py_file)
        try:
            locator.ensure_cache_path()
        except OSError as error:
            notice(f"cannot write to the kernel cache {cache_folder()} ({error.strerror or error})")
            return None
        return locator


class SourceKeyedCacheImpl(CompileResultCacheImpl):
    _locator_classes = (SourceKeyedLocator,)


def stand_in(value):
    """A closure variable as the cache key sees it: a kernel by its function's name, its file's content and its
    closure."""
    if isinstance(value, Dispatcher):
        function = value.py_func
        source = hashlib.sha256(Path(function.__code__.co_filename).read_bytes()).hexdigest()
        return function.__qualname__, source, tuple(stand_in(cell.cell_contents) for cell in function.__closure__ or ())
    return value


class SharedCache(FunctionCache):
    """numba's cache in the machine's folder; an entry it cannot read or write is compiled in memory instead."""

    _impl_class = SourceKeyedCacheImpl

    def load_overload(self, sig, target_context):
        try:
            # Not numba's, which first loads every typing and lowering registry (a third of a second, scipy included):
            # loaded machine code needs numba's runtime (allocation) only, and a compile after a miss loads them itself.
            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)
        except Exception as error:  # a truncated or corrupt entry: pickle, EOF, OS errors
            notice(f"cannot read a kernel from the cache {cache_folder()} ({type(error).__name__})")
            try:
                self.flush()  # an empty index, so the fresh compile is saved in its place
            except OSError:
                self.disable()
            return None

    def _index_key(self, sig, codegen):
        """numba's key, with a kernel in the closure (one kernel calling another that the same factory built) standing
        for its name, its source and its own closure (`stand_in`): numba would hash it pickled, with an id new in each
        process, and so miss the cache every time."""
        sig_key, magic, (code, _) = super()._index_key(sig, codegen)
        closure = tuple(stand_in(cell.cell_contents) for cell in self._py_func.__closure__ or ())
        return sig_key, magic, (code, hashlib.sha256(dumps(closure)).hexdigest())

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except OSError as error:  # a full or read-only disk
            notice(f"cannot save a kernel to the cache {cache_folder()} ({error.strerror or error})")
            self.disable()


def kernel(function, parallel: bool = False, variant: str = ""):
    """`function` compiled by numba (nopython, the GIL released; with `parallel`, its `numba.prange` loops shared by
    numba's threads), its machine code cached in `cache_folder()`. A closure that a factory builds for each layout or
    callee is named after its `variant`: numba names machine code after the function's name and a count of its own
    process, so two variants cached by two processes could share a name, and one process that loads both would run
    the first for both."""
    if variant:
        function.__name__ = function.__qualname__ = f"{function.__qualname__}_{variant}"
    dispatcher = numba.njit(parallel=parallel, **OPTIONS)(function)
    with suppress(RuntimeError):  # no cache folder: SourceKeyedLocator said why, and the kernel compiles in memory
        # Where `numba.njit(cache=True)` would keep numba's own FunctionCache beside the source.
        dispatcher._cache = SharedCache(function)
    return dispatcher
