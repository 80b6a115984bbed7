"""Package discovery: everything else is in pyproject.toml.

The built-in plugins live in the top-level ``plugins/`` folder (the project's agreed
layout) but install as the package ``gdbench_plugins``, so that they never collide with
another distribution's ``plugins``. setuptools' declarative ``packages.find`` cannot
rename a folder, so the package list is computed here: every package under ``src/`` and
``plugins/`` is found, none is hand-listed, and a new subpackage cannot be left out.
"""

from setuptools import find_packages, setup

PLUGINS = "gdbench_plugins"

setup(
    package_dir={"": "src", PLUGINS: "plugins"},
    packages=[
        *find_packages(where="src"),
        PLUGINS,
        *(f"{PLUGINS}.{sub}" for sub in find_packages(where="plugins")),
    ],
)
