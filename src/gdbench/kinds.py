"""One description per component kind: everything gdbench knows about optimizers, losses
and initializers that is not in a particular component.

Selection (aliases, defaults, reserved arguments), registration (the hook, required
defaults, whether ``batchable`` means anything), validation (the probe), the conformance
kit and ``gdbench plugins`` all look a kind up here. Adding a kind (a learning-rate
schedule, say) is one more ``Kind`` plus its registration hook in ``hookspecs``.

This module must stay cheap to import: probes are named as ``module:function`` strings and
imported (with torch) only when a sweep is validated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """What one kind of component is and how gdbench calls it."""

    name: str
    """Short name, used in ``kind:name`` and as the column prefix in the runs table."""
    aliases: tuple[str, ...]
    """Other spellings accepted before ``:`` on the command line."""
    hook: str
    """The registration hook that plugins implement to add components of this kind."""
    default: str
    """The component used when the user names none of this kind (the notebook's)."""
    call: str
    """How gdbench calls a component, for messages and docs."""
    reserved: frozenset[str]
    """Arguments gdbench passes itself, so never hyper-parameters."""
    required_defaults: tuple[str, ...] = ()
    """Hyper-parameters every component of this kind must give a default for."""
    batchable: bool = False
    """Whether ``batchable=True`` means something for this kind (it is refused otherwise)."""
    probe: str = ""
    """``module:function`` that builds one choice on a tiny problem to check its values."""
    has_optimum: bool = False
    """Whether components may register an exact solver (``optimum=``): losses."""

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


OPTIMIZER = Kind(
    name="optimizer",
    aliases=("optim", "opt"),
    hook="gdbench_register_optimizers",
    default="sgd",
    call="factory(params, **hyperparameters) -> torch.optim.Optimizer",
    reserved=frozenset({"params"}),
    required_defaults=("lr",),
    batchable=True,
    probe="gdbench.validate:probe_optimizer",
)
LOSS = Kind(
    name="loss",
    aliases=(),
    hook="gdbench_register_losses",
    default="l1",
    call="fn(prediction, target, **hyperparameters) -> loss per element",
    reserved=frozenset({"prediction", "target", "input"}),
    batchable=True,
    probe="gdbench.validate:probe_loss",
    has_optimum=True,
)
INIT = Kind(
    name="init",
    aliases=("initializer",),
    hook="gdbench_register_initializers",
    default="default",
    call="fn(weight, bias, generator, **hyperparameters) fills weight and bias in place",
    reserved=frozenset({"weight", "bias", "generator"}),
    probe="gdbench.validate:probe_init",
)

KINDS: dict[str, Kind] = {k.name: k for k in (OPTIMIZER, LOSS, INIT)}
"""Every kind, in the order they appear in a run's name and in the runs table."""

KIND_NAMES: tuple[str, ...] = tuple(KINDS)


def kind_named(text: str) -> Kind | None:
    """The kind spelt ``text`` (its name or an alias, any case), or None."""
    lowered = text.lower()
    return next((k for k in KINDS.values() if lowered in k.spellings), None)
