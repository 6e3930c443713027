"""The SLEUTH kernels compiled ahead of time: a run that imports no numba at all.

A ``landuse sleuth`` process spends more time starting numba (importing it, then its
one-off set-up when the first cached kernel loads, about 0.3 s together) than a whole
predict run of the demo takes to simulate. So the entry kernels of
:mod:`landuse.sleuth.kernels` are also compiled ahead of time, with ``numba.pycc``,
into an extension module kept in a cache folder, the way numba keeps its cache: built on
first use (in a subprocess, about half a minute, when a C compiler is found), rebuilt when
the kernels, numba, numpy or Python change, and imported afterwards without numba.

It is the same code as the JIT kernels, compiled by the same numba, so the results are
bit-identical (the tests compare them). The compiled functions release the GIL; the chunks
of a batch are shared among threads (one per core) with results independent of the split.

Control: ``LANDUSE_SLEUTH_AOT=0`` never uses nor builds it (JIT only); ``=1`` (default)
uses it, building it on first use when a C compiler is found; ``LANDUSE_SLEUTH_AOT_DIR``
chooses the cache folder (default: ``__pycache__`` beside this file if writable, else
``$XDG_CACHE_HOME/landuse`` or ``~/.cache/landuse``). Any failure (no compiler, a build
error, a read-only folder) falls back to the JIT kernels.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
# Sources compiled into the module: a change to any of them means a new module.
_SOURCES = ("kernels.py", "defs.py", "../growth/random.py", "aot.py")
_PREFIX = "_sleuth_aot_"

# Exported name -> (kernel in sleuth_kernels, numba signature).
EXPORTS = {
    "simulate_chunks": (
        "_simulate_chunks",
        "void(uint8[:, ::1], uint8[:, ::1], int32[:, ::1], int32[:, :, ::1], int64[::1], float64[::1], "
        "int64[:, ::1], float64[:, ::1], float64[::1], int64, int64, int64, int64[::1], uint8[:, :, ::1], "
        "int64[::1], int64, int64, int64, int64, int64, float64[:, :, :, ::1], uint16[:, ::1])",
    ),
    "pattern_stats": (
        "_pattern_stats",
        "void(uint8[:, ::1], uint8[:, ::1], float64[::1], int64[::1], uint8[:, ::1])",
    ),
    "spiral_offsets": ("_spiral_offsets", "int64[:, ::1](int64, int64)"),
}

_modules: dict[Path, ModuleType] = {}  # loaded, by path
_failed: set[Path] = set()  # builds that failed in this process


def enabled() -> bool:
    """False when ``LANDUSE_SLEUTH_AOT`` is ``0`` (or ``no`` / ``off`` / ``false``)."""
    return os.environ.get("LANDUSE_SLEUTH_AOT", "1").strip().lower() not in ("0", "no", "off", "false")


def _package_stamp(package: str) -> bytes:
    """Bytes that change with the installed version of ``package`` (its ``_version.py``), without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin:
        stamp = Path(spec.origin).parent / "_version.py"
        if stamp.is_file():
            return stamp.read_bytes()
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package).encode()
    except PackageNotFoundError:
        return b"none"


def module_name() -> str:
    """Name of the extension module for the current sources, numba, llvmlite, numpy and Python."""
    import numpy

    h = hashlib.sha256()
    for name in _SOURCES:
        h.update((_HERE / name).read_bytes())
    for package in ("numba", "llvmlite"):
        h.update(_package_stamp(package))
    h.update(f"|{numpy.__version__}|{sys.version}|{sys.platform}|{sys.implementation.cache_tag}".encode())
    return _PREFIX + h.hexdigest()[:20]


def cache_dir() -> Path:
    """Folder holding the compiled modules (see the module docstring)."""
    env = os.environ.get("LANDUSE_SLEUTH_AOT_DIR")
    if env:
        return Path(env)
    local = _HERE / "__pycache__"
    if os.access(local if local.is_dir() else _HERE, os.W_OK):
        return local
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "landuse"


def _path(folder: Path, name: str) -> Path:
    return folder / (name + importlib.machinery.EXTENSION_SUFFIXES[0])


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .so path always has a loader
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def module_path() -> Path:
    """Where the module for the current sources is (or will be) kept."""
    return _path(cache_dir(), module_name())


def load(*, build: bool = True) -> ModuleType | None:
    """The compiled module, building it first if needed and ``build``; None when unavailable.

    None when disabled (``LANDUSE_SLEUTH_AOT=0``), or not built and ``build`` is False, or
    the build failed (no C compiler, ...); callers then use the JIT kernels. A failed build
    is not retried in the same process.
    """
    if not enabled():
        return None
    name = module_name()
    path = _path(cache_dir(), name)
    if path in _modules:
        return _modules[path]
    if not path.exists():
        if not build or path in _failed:
            return None
        if build_module(path.parent) is None:
            _failed.add(path)
            return None
    try:
        mod = _import(path, name)
    except ImportError:
        _failed.add(path)
        return None
    _modules[path] = mod
    return mod


def compiler_available() -> bool:
    """Whether a C compiler (``$CC``, ``cc`` or ``gcc``) is on the path."""
    cc = os.environ.get("CC", "").split()
    return any(shutil.which(c) for c in ([cc[0]] if cc else []) + ["cc", "gcc"])


def build_module(folder: Path | None = None, *, timeout: float = 600.0) -> Path | None:
    """Compile the module into ``folder`` (default :func:`cache_dir`) in a subprocess.

    The subprocess imports numba with an empty temporary numba cache (so every kernel is
    compiled from source), compiles into a temporary folder and renames the module into
    place, so concurrent builds and readers never see a partial file. Returns the path, or
    None if no C compiler is found or the build fails (its error output is kept in
    ``<folder>/<name>.log``).
    """
    folder = Path(folder) if folder is not None else cache_dir()
    name = module_name()
    target = _path(folder, name)
    if target.exists():
        return target
    if not compiler_available():
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".sleuth_aot_", dir=folder) as tmp:
            env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba_cache")}
            res = subprocess.run(
                [sys.executable, "-m", "landuse.sleuth.aot", tmp, name], env=env, capture_output=True,
                text=True, timeout=timeout,
            )  # fmt: skip
            built = _path(Path(tmp), name)
            if res.returncode != 0 or not built.exists():
                (folder / f"{name}.log").write_text(res.stdout + res.stderr)
                return None
            os.replace(built, target)
            for old in folder.glob(_PREFIX + "*"):  # modules of earlier sources
                if old.name != target.name and not old.name.endswith(".log"):
                    old.unlink(missing_ok=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return target


def _compile(folder: str, name: str) -> None:
    """Compile the exports into ``folder/name<suffix>`` (runs in the build subprocess)."""
    import warnings

    warnings.simplefilter("ignore")  # numba.pycc is deprecated; it is still the AOT compiler numba ships
    import numba.pycc.compiler as pycc_compiler
    from numba.pycc import CC

    from landuse.sleuth import kernels as K

    class _NoGilFlags(pycc_compiler.Flags):
        """Exported functions release the GIL, as ``nogil=True`` kernels do."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    pycc_compiler.Flags = _NoGilFlags
    cc = CC(name)
    cc.output_dir = folder
    cc.verbose = False
    for exported, (kernel, sig) in EXPORTS.items():
        cc.export(exported, sig)(getattr(K, kernel).py_func)
    cc.compile()


if __name__ == "__main__":
    _compile(sys.argv[1], sys.argv[2])
