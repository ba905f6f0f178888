"""Build hook only (the metadata is in pyproject.toml): the wheel carries the starter configuration.

``tongban init DIR`` writes a starter configuration from ``federation/starter`` in the installed
package. That directory is not in the source tree: it is the repository's own ``partners.yaml``,
``mappings/`` and ``partners/``, copied into the build when a wheel is built, so the starter and the
catalogue the tests run on can never drift apart. An editable install reads the checkout instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
STARTER = ("partners.yaml", "mappings", "partners")  # as federation/cli/init.py STARTER


class BuildWithStarter(build_py):  # type: ignore[misc]
    """build_py, then the starter configuration into federation/starter of the build."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the checkout is the starter
        target = Path(self.build_lib) / "federation" / "starter"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in STARTER:
            src = HERE / name
            if src.is_dir():
                shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, target / name)


setup(cmdclass={"build_py": BuildWithStarter})
