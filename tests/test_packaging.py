"""The four top-level folders install as preau.* and nothing is left out of the wheel."""
from __future__ import annotations

import importlib
import pathlib
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = {"crdt": "preau.crdt", "protocol": "preau.protocol", "node": "preau.node", "cli": "preau.cli"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_layers_import_from_their_folders():
    for folder, module in LAYERS.items():
        mod = importlib.import_module(module)
        assert pathlib.Path(mod.__file__).resolve().parent == ROOT / folder


def test_every_subpackage_is_declared():
    """A subpackage missing from pyproject would import here (editable) but vanish from a wheel."""
    declared = set(_pyproject()["tool"]["setuptools"]["packages"])
    data = set(_pyproject()["tool"]["setuptools"]["package-data"])  # folders of data files, declared for them
    found = set(data)
    for folder, module in LAYERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((module, *rel)))
    assert found == declared


def test_package_dir_maps_only_preau_names():
    mapping = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert mapping == {module: folder for folder, module in LAYERS.items()}


def test_wheel_installs_only_the_preau_namespace(tmp_path):
    """Nothing but `preau/` (and its metadata) lands at the top of site-packages, and the data files travel."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    [wheel] = tmp_path.glob("preau-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    stem = wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1]
    assert {n.split("/")[0] for n in names} <= {"preau", stem + ".dist-info", stem + ".data"}
    # The .data folder carries only files installed under the environment's prefix (share/doc: the
    # systemd unit's Documentation=), never a "purelib"/"platlib" part that would land in site-packages.
    assert {n.split("/")[1] for n in names if n.startswith(stem + ".data/")} <= {"data"}
    for needed in ("preau/node/campaigns/debut-cp.toml", "preau/node/web/static/grid.js",
                   "preau/node/locales/fr/core.json", "preau/node/web/templates/grid.html", "preau/cli/main.py",
                   "preau/crdt/signing.py",
                   "preau/protocol/noise.py"):
        assert needed in names
