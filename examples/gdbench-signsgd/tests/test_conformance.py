"""gdbench's conformance kit, run on every component this plugin registers."""

from gdbench.testing import parametrize_with_checks

from gdbench_signsgd import plugin


@parametrize_with_checks(plugin)
def test_gdbench_conformance(component, check):
    check(component)
