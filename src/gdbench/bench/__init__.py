"""gdbench's benchmark suite, shipped inside the package so that it measures whatever
plugins are installed, third-party ones included.

Run it with ``gdbench bench --plugins sgd,adam`` (which also writes the results folder),
or with plain pytest::

    GDBENCH_BENCH_PLUGINS=sgd,adam pytest --pyargs gdbench.bench

Its settings come from environment variables (see ``config.py``) so that both ways work
without a pytest plugin loaded into every pytest session.
"""
