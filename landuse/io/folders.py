"""Output folders replaced as a whole or not at all, and atomic files.

Every command that writes a folder (``landuse run``, ``sample``, ``compare``, ``calibrate``,
``sleuth``, ``allocate``, ``suitability``) writes it through :class:`OutputFolder`:

1. **Check** the target: a folder written by the same command for the same owner (the
   scenario) is replaced; a folder of another command or scenario, or a non-empty folder
   without a landuse manifest, is refused unless ``force``; a folder holding an input of
   the command (at any depth) or the current working directory is always refused.
2. **Clean up** what a killed writer left beside the target (see *Recovery*).
3. **Stage**: everything is written into ``.<name>.staging-<pid>-<rand>`` beside the
   target (same file system), locked (``flock``) for as long as the writer lives.
4. **Manifest last**: ``manifest.json`` lists every file with its size and SHA-256 (each
   file is flushed to disk as it is hashed).
5. **Swap**: ``target -> .<name>.old-<pid>-<rand>``, ``staging -> target``, then the old
   folder's nested output folders (a ``calibration/`` a later command wrote inside a run
   folder, a run's ``outputs/`` inside a sample folder) are moved into the new folder and
   the old folder is removed.

Recovery: leftovers of dead writers (their lock is free) are handled by the next writer
of the same target and by :func:`verify_folder`: a ``.staging-`` folder is removed; an
``.old-`` folder is renamed back onto the target when the target is missing (a writer was
killed between the two renames: the earlier folder is restored, the new one was never
reported as written), and otherwise its nested output folders are carried over and it is
removed. So after any interruption the target is the complete earlier folder or the
complete new one.

For the fault-injection tests, ``LANDUSE_FAULT=<point>[:<n>]`` kills the process with
SIGKILL at the ``n``-th (default first) passage of a named point: ``file`` (an atomic file
was written), ``staged`` (staging complete, manifest written), ``swap`` (between the two
renames), ``swapped`` (after them, before the old folder is removed).

This module imports only the standard library: the ``landuse sleuth`` fast path uses it.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landuse.core.errors import InputOverwriteError, LanduseError, OutputExistsError, OutputFolderError, make_output_dir

MANIFEST = "manifest.json"
FORMAT = 1
"""Version of the output-folder manifest (key ``landuse_output``)."""

INTERRUPTED = (
    "interrupted; no output folder was left half-written: each holds its earlier outputs, or the complete new "
    "ones if it had been swapped in (`landuse verify DIR` checks one)"
)
"""What the command line says when Ctrl-C stops a command."""

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>staging|old)-(?P<pid>\d+)-[0-9a-f]{8}$")
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_FAULT_COUNTS: dict[str, int] = {}

# --------------------------------------------------------------------------- atomic files

_PROTECTED: contextvars.ContextVar[frozenset[Path]] = contextvars.ContextVar(
    "landuse_protected_inputs", default=frozenset()
)


def _resolve(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


@contextlib.contextmanager
def protected_inputs(paths: Iterable[str | os.PathLike]) -> Iterator[None]:
    """Within this context every writer refuses to write over one of ``paths``."""
    token = _PROTECTED.set(_PROTECTED.get() | {_resolve(p) for p in paths})
    try:
        yield
    finally:
        _PROTECTED.reset(token)


def check_not_input(path: str | os.PathLike, protected: Iterable[str | os.PathLike] = ()) -> None:
    """Raise :class:`InputOverwriteError` if ``path`` is a protected input."""
    target = _resolve(path)
    if target in _PROTECTED.get() or target in {_resolve(p) for p in protected}:
        raise InputOverwriteError(
            f"refusing to write {target}: it is an input of the current scenario; "
            "choose another output folder (outputs.folder or `out`)"
        )


def fault_point(point: str) -> None:
    """Test hook: SIGKILL this process at the point named by ``LANDUSE_FAULT`` (see the module docstring)."""
    spec = os.environ.get("LANDUSE_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _FAULT_COUNTS[point] = _FAULT_COUNTS.get(point, 0) + 1
    if _FAULT_COUNTS[point] >= int(nth or 1):
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, protected: Iterable[str | os.PathLike] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    If the body raises (or is interrupted), the temporary file is removed and any
    earlier file at ``path`` is left untouched.
    """
    target = Path(path)
    check_not_input(target, protected)
    make_output_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException as exc:
        with contextlib.suppress(AttributeError):  # for the message of a failed folder write
            exc.landuse_path = getattr(exc, "landuse_path", target)
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        for side in tmp_path.parent.glob(tmp_path.name + ".*"):  # GDAL side-cars (.aux.xml)
            with contextlib.suppress(FileNotFoundError):
                side.unlink()
        raise
    fault_point("file")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def figure_png(fig: Any, **savefig: Any) -> bytes:
    """A matplotlib figure as PNG bytes without the software tag (same figure, same bytes); the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, **savefig)
    plt.close(fig)
    return buf.getvalue()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write a binary file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


# --------------------------------------------------------------------------- manifests


def file_digest(path: str | os.PathLike, *, sync: bool = False) -> tuple[int, str]:
    """Size and SHA-256 of a file's bytes; with ``sync``, also flush the file to disk."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
        if sync:
            os.fsync(f.fileno())
    return size, h.hexdigest()


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's ``manifest.json`` as a dict, or None if it has none (or it is not a landuse manifest)."""
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not ("landuse_output" in data or "scenario" in data):
        return None
    return data


def _identity(manifest: Mapping[str, Any]) -> tuple[str, str | None]:
    """(command, owner) of a manifest; manifests of earlier versions are `landuse run`'s."""
    if "landuse_output" in manifest:
        return str(manifest.get("command")), manifest.get("owner")
    return "run", manifest.get("scenario")


def _describe(command: str, owner: str | None) -> str:
    if command == "run":
        return f"scenario {owner!r}"
    return f"`landuse {command}`" + (f" for {owner!r}" if owner and owner != command else "")


def _is_output_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and read_manifest(path) is not None


# --------------------------------------------------------------------------- locks and leftovers


def _lock(path: Path) -> int | None:
    """Open ``path`` (a folder) and lock it exclusively; the lock lives as long as the process keeps the fd.

    Raises :class:`BlockingIOError` if another process holds the lock. Returns None where
    there is no ``flock`` (Windows, some network file systems): liveness then falls back to
    the process id in the folder's name.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError:  # no flock on this file system
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _writer_alive(path: Path, pid: int) -> bool:
    """Whether the writer that owns a leftover folder still runs (it holds the folder's lock)."""
    try:
        fd = _lock(path)
    except FileNotFoundError:
        return False
    except OSError:  # locked (BlockingIOError), or unreadable: leave it alone
        return True
    if fd is not None:
        _unlock(fd)
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _leftovers(target: Path) -> list[tuple[str, Path, int]]:
    out = []
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            m = _LEFTOVER.match(entry.name)
            if m and m["name"] == target.name and entry.is_dir() and not entry.is_symlink():
                out.append((m["kind"], entry, int(m["pid"])))
    return sorted(out, key=lambda e: (e[0] != "staging", e[1].name))


def _carry_nested(old: Path, new: Path) -> None:
    """Move the nested output folders of ``old`` that ``new`` lacks into ``new``."""
    for child in sorted(old.iterdir()):
        if _is_output_folder(child) and not (new / child.name).exists():
            os.rename(child, new / child.name)


def recover(target: str | os.PathLike) -> list[str]:
    """Clean up what killed writers of ``target`` left beside it; return what was done.

    A dead writer's staging folder is removed; its ``.old-`` folder is renamed back onto
    the target when the target is missing (killed between the two renames of the swap),
    otherwise its nested output folders are moved into the target and it is removed.
    Leftovers of writers still running are left alone.
    """
    target = _resolve(target)
    notes = []
    for kind, path, pid in _leftovers(target):
        if _writer_alive(path, pid):
            continue
        if kind == "staging":
            shutil.rmtree(path, ignore_errors=True)
            notes.append(f"removed {path.name}, the unfinished staging folder of a writer that was stopped")
        elif not target.exists() and not target.is_symlink():
            os.rename(path, target)
            _sync_dir(target.parent)
            notes.append(f"restored {target} from {path.name}: a writer was stopped while swapping it")
        else:
            if target.is_dir():
                _carry_nested(path, target)
            shutil.rmtree(path, ignore_errors=True)
            notes.append(f"removed {path.name}, the replaced folder a stopped writer had not removed yet")
    return notes


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system syncs folders
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- checks


def check_target(
    target: str | os.PathLike,
    *,
    command: str,
    owner: str | None,
    force: bool = False,
    protected: Iterable[str | os.PathLike] = (),
    option: str = "`out`",
) -> Path:
    """Raise :class:`OutputExistsError` unless ``command`` may replace the folder ``target``.

    Allowed: a missing or empty folder, or one written by the same command for the same
    ``owner``; with ``force`` also any other folder, except one that holds a ``protected``
    path (an input) or the current working directory. Nested output folders (with their
    own manifest) and leftovers of stopped writers do not count as content. Returns the
    resolved target.
    """
    path = _resolve(target)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output path {path} exists and is not a folder; choose another {option}")
    for p in protected:
        rp = _resolve(p)
        if rp == path or path in rp.parents:
            raise OutputExistsError(
                f"output folder {path} holds the input {p}; an output folder is replaced as a whole, "
                f"so choose another folder with {option}"
            )
    cwd = Path.cwd().resolve()
    if path.exists() and (cwd == path or path in cwd.parents):
        raise OutputExistsError(
            f"output folder {path} holds the current folder; an output folder is replaced as a whole, "
            f"so choose a subfolder with {option} (e.g. {option} ./outputs)"
        )
    if not path.exists():
        return path
    entries = [e for e in path.iterdir() if not _LEFTOVER.match(e.name) and not _is_output_folder(e)]
    if not entries:
        return path
    manifest = read_manifest(path)
    found = _identity(manifest) if manifest is not None else None
    if force:
        return path
    if found == (command, owner):
        unlisted = _unlisted(path, manifest)
        if unlisted:
            shown = ", ".join(unlisted[:3]) + (f" and {len(unlisted) - 3} more" if len(unlisted) > 3 else "")
            raise OutputExistsError(
                f"output folder {path} holds {len(unlisted)} entr{'y' if len(unlisted) == 1 else 'ies'} its manifest "
                f"does not list ({shown}), which replacing the folder would delete; move them out, or pass `force` "
                "to replace it anyway"
            )
        return path
    if found is not None:
        mine = repr(owner) if found[0] == command == "run" else _describe(command, owner)
        raise OutputExistsError(
            f"output folder {path} holds the results of {_describe(*found)}, not {mine}; "
            f"choose another folder with {option}, or pass `force` to replace it"
        )
    raise OutputExistsError(
        f"output folder {path} is not empty and was not written by landuse (no manifest.json); choose another "
        f"folder with {option}, or pass `force` to replace it (its {len(entries)} entries are deleted)"
    )


def _unlisted(path: Path, manifest: Mapping[str, Any]) -> list[str]:
    """Entries of an output folder that its manifest does not list (nested output folders aside)."""
    listed = manifest.get("files") or []
    if not all(isinstance(f, dict) for f in listed):  # an earlier landuse: its files were not all listed
        return sorted(e.name + "/" for e in path.iterdir() if e.is_dir() and e.name != "figures"
                      and not _LEFTOVER.match(e.name) and not _is_output_folder(e))
    known = {str(f.get("path")) for f in listed} | {MANIFEST}
    out = []
    for root, dirs, names in os.walk(path):
        here = Path(root)
        dirs[:] = [d for d in dirs if not _LEFTOVER.match(d) and not _is_output_folder(here / d)]
        out += [(here / n).relative_to(path).as_posix() for n in names]
    return sorted(e for e in out if e not in known)


def _write_error(exc: BaseException, target: Path, option: str, where: object = None) -> OutputFolderError | None:
    """A clear error for a failed write (full disk, no permission), or None if it is not one."""
    free = None
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(target.parent).free
    kept = f"the earlier {target} is unchanged" if target.exists() else f"nothing was written to {target}"
    where = where or getattr(exc, "filename", None) or target
    full = isinstance(exc, OSError) and exc.errno in _DISK_FULL
    if not full and free is not None and free < (1 << 20) and "rasterio" in type(exc).__module__:
        full = True  # GDAL reports a full disk as a write error without errno
    if full:
        return OutputFolderError(
            f"no space left on the device of {target.parent} while writing {where}"
            f"{f' ({free / 1e6:.1f} MB free)' if free is not None else ''}; {kept}; "
            f"free some space or choose a folder on another disk with {option}"
        )
    if isinstance(exc, OSError) and not isinstance(exc, LanduseError):
        return OutputFolderError(
            f"cannot write {where}: {exc.strerror or exc}; {kept}; choose a writable folder with {option}"
        )
    return None


# --------------------------------------------------------------------------- the staged folder


@dataclass
class OutputFolder:
    """Write an output folder into a staging folder beside it and swap it in whole.

    Use as a context manager: write everything into :attr:`path`, then call
    :meth:`commit` with the manifest's other content. If the block raises (or is
    interrupted) before the commit, the staging folder is removed and the target is
    untouched; a full disk or an unwritable folder becomes an :class:`OutputFolderError`
    that says so.

    Parameters
    ----------
    target : path
        The output folder.
    command : str
        The command writing it (``run``, ``sample``...); recorded in the manifest.
    owner : str, optional
        What the folder belongs to (the scenario's name); a folder of another command or
        owner is replaced only with ``force``.
    force : bool
        Replace a folder another command, owner or the user wrote.
    protected : iterable of path
        Inputs: a target holding one of them is always refused.
    option : str
        How the user names the folder, for messages.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> base = pathlib.Path(tempfile.mkdtemp())
    >>> with OutputFolder(base / "out", command="demo", owner="x") as stage:
    ...     _ = write_text(stage.path / "a.txt", "hello")
    ...     files = stage.commit({"note": "anything"})
    >>> [p.name for p in files], verify_folder(base / "out").ok
    (['a.txt', 'manifest.json'], True)
    """

    target: Path
    command: str
    owner: str | None = None
    force: bool = False
    protected: Iterable[str | os.PathLike] = ()
    option: str = "`out`"
    path: Path = field(init=False)
    manifest: dict[str, Any] = field(init=False, default_factory=dict)
    _fd: int | None = field(init=False, default=None, repr=False)
    _done: bool = field(init=False, default=False, repr=False)

    def __post_init__(self) -> None:
        self.protected = list(self.protected)
        self.target = check_target(self.target, command=self.command, owner=self.owner, force=self.force,
                                   protected=self.protected, option=self.option)

    def __enter__(self) -> OutputFolder:
        recover(self.target)
        make_output_dir(self.target.parent, option=self.option)
        for _ in range(100):
            name = f".{self.target.name}.staging-{os.getpid()}-{os.urandom(4).hex()}"
            self.path = self.target.parent / name
            try:
                self.path.mkdir()
                break
            except FileExistsError:  # pragma: no cover - 32 random bits
                continue
            except OSError as exc:
                raise _write_error(exc, self.target, self.option) or exc from None
        self._fd = _lock(self.path)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if exc is None and not self._done:
                self.commit()
        except Exception as failed:
            err = None if isinstance(failed, LanduseError) else self._error(failed)
            if err is None:
                raise
            raise err from None
        finally:
            if not self._done:
                shutil.rmtree(self.path, ignore_errors=True)
            _unlock(self._fd)
            self._fd = None
        if exc is not None and isinstance(exc, Exception) and not isinstance(exc, LanduseError):
            err = self._error(exc)
            if err is not None:
                raise err from None

    def _error(self, exc: BaseException) -> OutputFolderError | None:
        where = getattr(exc, "landuse_path", None) or getattr(exc, "filename", None)
        if where and str(where).startswith(str(self.path)):
            where = self.target / Path(where).relative_to(self.path)
        return _write_error(exc, self.target, self.option, where)

    def commit(self, manifest: Mapping[str, Any] | None = None) -> list[Path]:
        """Write ``manifest.json`` (``manifest`` plus the file list) and swap the folder in.

        Returns the final paths of every file, the manifest last.
        """
        files = []
        for root, dirs, names in os.walk(self.path):
            dirs.sort()
            for n in sorted(names):
                p = Path(root) / n
                if p.parent == self.path and n == MANIFEST:
                    continue
                size, digest = file_digest(p, sync=True)
                files.append({"path": p.relative_to(self.path).as_posix(), "size": size, "sha256": digest})
            _sync_dir(Path(root))
        data = dict(manifest or {})
        data.update({"landuse_output": FORMAT, "command": self.command, "owner": self.owner,
                     "files": sorted(files, key=lambda f: f["path"])})
        with atomic_path(self.path / MANIFEST) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(json.dumps(data, indent=2, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
        _sync_dir(self.path)
        self.manifest = data
        fault_point("staged")
        self._swap()
        return [self.target / f["path"] for f in data["files"]] + [self.target / MANIFEST]

    def _swap(self) -> None:
        target = self.target
        if not target.exists():
            os.rename(self.path, target)
            self._done = True
            _sync_dir(target.parent)
            fault_point("swapped")
            return
        recover(target)  # a writer stopped since we started
        old = target.parent / f".{target.name}.old-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            old_fd = _lock(target)
        except BlockingIOError as exc:
            raise OutputFolderError(
                f"another landuse process is replacing {target}; wait for it to finish and run again"
            ) from exc
        try:
            os.rename(target, old)
            try:
                fault_point("swap")
                os.rename(self.path, target)
            except BaseException:
                os.rename(old, target)  # put the earlier folder back
                raise
            self._done = True
            _sync_dir(target.parent)
            fault_point("swapped")
            _carry_nested(old, target)
        finally:
            _unlock(old_fd)
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- verify


@dataclass
class Verification:
    """What :func:`verify_folder` found."""

    folder: Path
    problems: list[str]
    notes: list[str]
    files: int = 0
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the folder matches its manifest."""
        return not self.problems

    def text(self) -> str:
        """The check's result as lines for a terminal."""
        if self.ok:
            m = self.manifest or {}
            return (f"{self.folder}: {self.files} files match manifest.json, nothing else "
                    f"(written by {_describe(*_identity(m))})")
        return "\n".join([f"{self.folder}: does not match its manifest", *(f"  {p}" for p in self.problems)])


def verify_folder(folder: str | os.PathLike) -> Verification:
    """Check an output folder against its manifest: every listed file, size and SHA-256; nothing else.

    Leftovers of stopped writers beside the folder are cleaned up first (:func:`recover`),
    which restores the earlier folder if a writer was stopped mid-swap. Nested output
    folders (with their own manifest) are not part of the folder; verify them on their own.

    Raises
    ------
    OutputFolderError
        ``folder`` does not exist or is not a folder.
    """
    path = _resolve(folder)
    notes = recover(path)
    if not path.is_dir():
        raise OutputFolderError(f"no output folder at {path}; pass the folder a landuse command wrote")
    problems: list[str] = []
    manifest = read_manifest(path)
    if manifest is None:
        return Verification(path, [f"no landuse {MANIFEST} in {path}: the folder was not written (completely) by "
                                   "landuse"], notes)
    listed = manifest.get("files")
    if "landuse_output" not in manifest or not all(isinstance(f, dict) for f in listed or []):
        return Verification(path, [f"{MANIFEST} lists no sizes and SHA-256 (written by an earlier landuse); run "
                                   "the command again to get a folder that can be verified"], notes, 0, manifest)
    known = set()
    for entry in listed:
        rel = str(entry.get("path", ""))
        known.add(rel)
        p = path / rel
        if not rel or rel.startswith("/") or ".." in Path(rel).parts:
            problems.append(f"{MANIFEST} lists an invalid path {rel!r}")
        elif not p.is_file() or p.is_symlink():
            problems.append(f"missing: {rel}")
        else:
            size, digest = file_digest(p)
            if size != entry.get("size"):
                problems.append(f"changed: {rel} has {size} bytes, the manifest says {entry.get('size')}")
            elif digest != entry.get("sha256"):
                problems.append(f"changed: {rel} (SHA-256 differs from the manifest)")
    for root, dirs, names in os.walk(path):
        here = Path(root)
        for d in list(dirs):
            sub = here / d
            if _LEFTOVER.match(d) or _is_output_folder(sub):
                dirs.remove(d)
                notes.append(f"not checked: {sub.relative_to(path)} (a nested output folder or its leftover)")
            elif sub.is_symlink():
                dirs.remove(d)
                problems.append(f"not in the manifest: {sub.relative_to(path)} (a symbolic link)")
            elif not any(sub.iterdir()):
                problems.append(f"not in the manifest: {sub.relative_to(path)}/ (an empty folder)")
        for n in names:
            rel = (here / n).relative_to(path).as_posix()
            if rel != MANIFEST and rel not in known:
                problems.append(f"not in the manifest: {rel}")
    return Verification(path, problems, notes, len(known), manifest)


__all__ = [
    "FORMAT",
    "INTERRUPTED",
    "MANIFEST",
    "OutputFolder",
    "Verification",
    "atomic_path",
    "check_not_input",
    "check_target",
    "fault_point",
    "file_digest",
    "protected_inputs",
    "read_manifest",
    "recover",
    "verify_folder",
    "write_bytes",
    "write_text",
]
