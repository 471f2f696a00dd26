"""Build hook: the wheel carries the app's resources and user guide inside ``dpsom_gui``.

All metadata lives in ``pyproject.toml``; this file only adds one step to ``build_py``. The
icons and style sheet stay in the repository's top-level ``resources/`` folder and the user
guide in ``docs/``; a wheel has no place for top-level folders, so the build copies them to
``dpsom_gui/resources`` and ``dpsom_gui/docs`` in the build tree, where
:func:`dpsom_gui.resources.resource_path` and the help window look for them after a wheel
install. An editable install needs no copy: there ``dpsom_gui`` sits next to both folders.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def packaged_files() -> list[tuple[Path, str]]:
    """(source file, destination relative to the build tree) for every file to copy."""
    files = [(p, "dpsom_gui/resources/" + p.relative_to(ROOT / "resources").as_posix())
             for p in sorted((ROOT / "resources").rglob("*")) if p.is_file()]
    # The user guide and its pictures (the other documents and the screenshot script stay out).
    files += [(p, "dpsom_gui/docs/" + p.name) for p in sorted((ROOT / "docs").glob("*.md"))]
    files += [(p, "dpsom_gui/docs/images/" + p.name)
              for p in sorted((ROOT / "docs" / "images").glob("*")) if p.is_file()]
    return files


class BuildPyWithResources(build_py):
    """``build_py`` that also copies :func:`packaged_files` into the build tree."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for source, destination in packaged_files():
            target = Path(self.build_lib) / destination
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return outputs + [str(Path(self.build_lib) / d) for _, d in packaged_files()]


setup(cmdclass={"build_py": BuildPyWithResources})
