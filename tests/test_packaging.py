"""An ordinary install works, not only the editable one the README sets up.

The templates live inside the package (``publisher/templates/``); a wheel must
carry them inside the package, or ``pip install publisher`` builds nothing.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.helpers import ROOT, SEEDS


def test_wheel_carries_the_templates_and_an_install_of_it_builds(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    (wheel,) = wheels.glob("publisher-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.removeprefix("publisher/templates/") for n in names if "/templates/" in n}
    assert shipped == {p.name for p in (ROOT / "publisher" / "templates").iterdir() if p.is_file()}

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel],
        check=True,
    )
    work = tmp_path / "work"  # no checkout here: state and output land in it
    work.mkdir()
    code = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import publisher; "
        f"assert publisher.__file__.startswith({str(site)!r}), publisher.__file__; "
        "from publisher.cli import main; from publisher.settings import Settings; "
        "print(Settings().template_dirs[0]); "
        f"sys.exit(main(['build', '--quiet', '--out', 'feeds', {str(SEEDS)!r}]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == str(site / "publisher" / "templates")
    assert "12 posts" in run.stdout
    assert (work / "feeds" / "all.atom").is_file()
    assert len(list((work / "feeds" / "posts").glob("*.html"))) == 12
    assert '<link rel="stylesheet"' in (work / "feeds" / "index.html").read_text()
