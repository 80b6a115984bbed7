"""Component kinds, and the checks ``register()`` makes where a plugin registers: a malformed
component is refused there, naming the plugin and the component."""

from __future__ import annotations

import pickle

import pytest
from helpers import make_specs

from gdbench import hookimpl, hookspecs
from gdbench.components import RegistrationError, Registry
from gdbench.kinds import KIND_NAMES, KINDS, kind_named
from gdbench.lazy import lazy
from gdbench.plugins import load_plugins


def register(kind: str, name: str, fn=None, **kw):
    """Register one component of ``kind`` as plugin 'myplugin' would; return it."""
    registry = Registry()
    if fn is None:
        fn = _FUNCTIONS[kind]
    if kind == "optimizer":
        kw.setdefault("defaults", {"lr": 0.1})
    registry.register_callable(kind, "myplugin", "my-dist", "1.0")(name, fn, **kw)
    (component,) = registry.components(kind)
    return component


def _optimizer(params, lr, **kw):
    """An optimizer factory.

    More lines that the description leaves out.
    """


def _loss(prediction, target, **kw):
    """A loss."""


def _init(weight, bias, generator, **kw):
    """An initializer."""


_FUNCTIONS = {"optimizer": _optimizer, "loss": _loss, "init": _init}


def refusal(kind: str, name: str, fn=None, **kw) -> str:
    with pytest.raises(RegistrationError) as caught:
        register(kind, name, fn, **kw)
    message = str(caught.value)
    assert "plugin 'myplugin'" in message  # every refusal names the plugin
    return message


def test_a_registered_component_keeps_what_it_was_given():
    c = register("optimizer", "mine", defaults={"lr": 0.1, "momentum": 0.9}, batchable=True)
    assert (c.kind, c.name, c.qualified_name) == ("optimizer", "mine", "optimizer:mine")
    assert (c.plugin, c.dist, c.version) == ("myplugin", "my-dist", "1.0")
    assert c.defaults == {"lr": 0.1, "momentum": 0.9} and c.batchable is True
    assert c.fn is _optimizer and c.kind_info is KINDS["optimizer"]
    assert c.description == "An optimizer factory."  # the docstring's first line
    assert register("loss", "l", description="Mine.\nMore.").description == "Mine."


def test_list_defaults_become_tuples():
    c = register("optimizer", "mine", defaults={"lr": 0.1, "betas": [0.9, [0.99, 0.5]]})
    assert c.defaults["betas"] == (0.9, (0.99, 0.5))
    hash(tuple(c.defaults.items()))  # hyper-parameters identify runs and batches


@pytest.mark.parametrize("value", [{"a": 1}, {1, 2}, [0.9, {"a": 1}], bytearray(b"x")])
def test_unhashable_defaults_are_refused(value):
    message = refusal("optimizer", "mine", defaults={"lr": 0.1, "weights": value})
    assert "optimizer 'mine'" in message and "weights" in message and "hashable" in message


def test_batchable_means_nothing_for_an_initializer():
    message = refusal("init", "stacked", batchable=True)
    assert "init 'stacked'" in message and "batchable" in message
    assert register("init", "plain", batchable=False).batchable is False


def test_an_optimizer_must_default_its_learning_rate():
    message = refusal("optimizer", "no-lr", defaults={"momentum": 0.9})
    assert "optimizer 'no-lr'" in message and "'lr'" in message
    assert register("loss", "no-lr").defaults == {}  # other kinds need no lr


@pytest.mark.parametrize(
    ("kind", "reserved"), [(k, name) for k in KIND_NAMES for name in sorted(KINDS[k].reserved)]
)
def test_arguments_gdbench_passes_itself_are_no_hyper_parameters(kind, reserved):
    defaults = {"lr": 0.1, reserved: 1} if kind == "optimizer" else {reserved: 1}
    message = refusal(kind, "mine", defaults=defaults)
    assert f"{kind} 'mine'" in message and repr(reserved) in message


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"defaults": [("lr", 0.1)]}, "defaults must be a dict"),
        ({"defaults": {"lr": 0.1, "not-a-name": 1}}, "'not-a-name' is not a valid keyword"),
        ({"batchable": "yes"}, "batchable must be True or False"),
        ({"description": 3}, "description must be a string"),
    ],
)
def test_malformed_registrations_are_refused(kw, fragment):
    assert fragment in refusal("optimizer", "mine", **kw)


def test_names_and_functions_are_checked():
    assert "'Bad Name!' is invalid" in refusal("loss", "Bad Name!")
    message = refusal("loss", "mine", fn=42)
    assert "loss 'mine'" in message and "not callable" in message
    assert register("loss", "ok_name-2").name == "ok_name-2"


def test_a_refused_registration_fails_its_plugin_naming_the_component():
    class Unhashable:
        @hookimpl
        def gdbench_register_optimizers(self, register):
            register("good-opt", lazy("torch.optim:SGD"), defaults={"lr": 0.1})
            register("bad-opt", lazy("torch.optim:SGD"), defaults={"lr": 0.1, "w": {"a": 1}})

    ps = load_plugins(extra=[("unhashable", Unhashable())], entry_points=False)
    (info,) = ps.plugins
    assert "plugin 'unhashable'" in info.error and "optimizer 'bad-opt'" in info.error
    assert info.components == [] and ps.registry.components() == []


def test_every_kind_is_described_once():
    assert KIND_NAMES == ("optimizer", "loss", "init") == tuple(KINDS)
    for kind in KINDS.values():
        assert hasattr(hookspecs, kind.hook)
        assert kind.probe.startswith("gdbench.validate:")
    assert kind_named("OPTIM") is KINDS["optimizer"] and kind_named("opt") is KINDS["optimizer"]
    assert kind_named("initializer") is KINDS["init"] and kind_named("colour") is None
    assert [k for k in KIND_NAMES if KINDS[k].batchable] == ["optimizer", "loss"]


def test_each_kinds_default_is_a_builtin_component(plugin_set):
    for kind in KINDS.values():
        (component,) = plugin_set.registry.candidates(kind.default, kind.name)
        assert component.dist == "gdbench"


def test_a_run_spec_holds_one_choice_per_kind_in_kind_order(plugin_set):
    specs = make_specs(plugin_set, "adam[lr=0.1],sgd,mse,l1,zeros", seeds=(3, 4), epochs=7)
    assert len(specs) == 2 * 2 * 1 * 2
    first = specs[0]
    assert [c.kind for c in first.choices] == list(KIND_NAMES)
    assert (first.optimizer.name, first.loss.name, first.init.name) == ("adam", "mse", "zeros")
    assert first.choice("loss") is first.loss and first.lr == 0.1
    # device × optimizer × loss × init × seed, the seed varying fastest
    order = [(s.optimizer.name, s.loss.name, s.seed) for s in specs]
    assert order == [
        ("adam", "mse", 3), ("adam", "mse", 4), ("adam", "l1", 3), ("adam", "l1", 4),
        ("sgd", "mse", 3), ("sgd", "mse", 4), ("sgd", "l1", 3), ("sgd", "l1", 4),
    ]  # fmt: skip
    assert [s.run_id for s in specs] == list(range(8))
    assert {(s.epochs, s.device) for s in specs} == {(7, "cpu")}
    again = pickle.loads(pickle.dumps(specs))  # plain values, for other executors
    assert [(s.run_id, s.optimizer.label(), s.seed) for s in again] == [
        (s.run_id, s.optimizer.label(), s.seed) for s in specs
    ]
