"""Dask is optional (the ``dask`` extra): everything but a scheduler runs without it; asking for one says what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

# runs the CLI in a fresh interpreter where `import dask` / `import distributed` fail, as without the extra
_NO_DASK = textwrap.dedent("""
    import sys
    sys.modules["dask"] = None
    sys.modules["distributed"] = None
    sys.argv = ["landuse", *sys.argv[1:]]
    from landuse.cli.app import main
    main()
""")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _NO_DASK, *args], capture_output=True, text=True)


def test_a_run_needs_no_dask(tmp_path: Path, tiny_config: Path) -> None:
    out = _cli("run", str(tiny_config), "--out", str(tmp_path / "out"), "--runs", "2", "-q")
    assert out.returncode == 0, out.stderr
    assert any((tmp_path / "out").glob("landuse_*.tif"))


def test_tiled_growth_in_process_needs_no_dask(tmp_path: Path, tiny_config: Path) -> None:
    out = _cli("run", str(tiny_config), "--out", str(tmp_path / "out"), "--chunks", "64", "--outputs", "maps", "-q")
    assert out.returncode == 0, out.stderr


def test_a_scheduler_without_dask_is_a_clear_error(tmp_path: Path, tiny_config: Path) -> None:
    out = _cli("run", str(tiny_config), "--out", str(tmp_path / "out"), "--scheduler", "local", "-q")
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "landuse[dask]" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_a_config_asking_for_a_scheduler_without_dask_is_a_clear_error(tmp_path: Path, tiny_config: Path) -> None:
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["compute"] = {"scheduler": "tcp://10.0.0.5:8786"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = _cli("validate", str(path))
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    text = out.stdout + out.stderr
    assert "compute.scheduler" in text and "landuse[dask]" in text and "Traceback" not in text
