"""The build's one step beyond pyproject.toml: the guides in docs/ go into the package, as
chatmagic/docs/*.md, so that `chatmagic docs` and the messages that name a guide work for
whoever installed a wheel and has no checkout beside it."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithGuides(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "chatmagic" / "docs"
        self.mkpath(str(target))
        for guide in sorted((Path(__file__).resolve().parent / "docs").glob("*.md")):
            self.copy_file(str(guide), str(target / guide.name))


setup(cmdclass={"build_py": BuildWithGuides})
