"""gdbench's built-in plugins, installed as the package ``gdbench_plugins``.

They are registered through entry points in gdbench's own ``pyproject.toml``, in the
same ``gdbench`` group that third-party plugin packages use: built-ins have no
privileged path into gdbench.
"""
