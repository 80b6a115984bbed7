import pytest

from gdbench import UsageError
from gdbench.selection import parse_value, select, split_items


def test_unnamed_kinds_take_the_notebooks_defaults(plugin_set):
    sel = select(plugin_set.registry, "adam")
    assert [c.name for c in sel.optimizers] == ["adam"]
    assert [c.name for c in sel.losses] == ["l1"]
    assert [c.name for c in sel.inits] == ["default"]
    assert select(plugin_set.registry, "").optimizers[0].name == "sgd"


def test_inline_grid_is_a_product_with_defaults_filled_in(plugin_set):
    sel = select(plugin_set.registry, "adam[lr=0.001,0.01;betas=0.9:0.99,0.8:0.9],huber[delta=2]")
    params = [c.kwargs() for c in sel.optimizers]
    assert len(params) == 4
    assert {(p["lr"], p["betas"]) for p in params} == {
        (0.001, (0.9, 0.99)),
        (0.001, (0.8, 0.9)),
        (0.01, (0.9, 0.99)),
        (0.01, (0.8, 0.9)),
    }
    assert all(p["eps"] == 1e-8 for p in params)
    assert sel.losses[0].kwargs() == {"delta": 2}


def test_lr_option_applies_where_no_inline_lr(plugin_set):
    sel = select(plugin_set.registry, "sgd,adam[lr=0.5]", lrs=[0.1, 0.2])
    lrs = sorted((c.name, c.kwargs()["lr"]) for c in sel.optimizers)
    assert lrs == [("adam", 0.5), ("sgd", 0.1), ("sgd", 0.2)]


def test_kind_qualification(plugin_set):
    sel = select(plugin_set.registry, "loss:mse,optimizer:momentum[nesterov=true]")
    assert sel.losses[0].name == "mse"
    assert sel.optimizers[0].kwargs()["nesterov"] is True


def test_values_are_parsed_never_evaluated():
    assert parse_value("__import__('os').system('false')") == "__import__('os').system('false')"
    assert parse_value("1e-3") == 0.001 and parse_value("3") == 3
    assert parse_value("true") is True and parse_value("none") is None
    assert parse_value("0.9:0.99") == (0.9, 0.99)
    assert split_items("a[x=1,2;y=3],b") == ["a[x=1,2;y=3]", "b"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("adma", "did you mean adam"),
        ("adam[betaz=0.9:0.99]", "did you mean 'betas'"),
        ("adam[lr=-1]", "learning rate must be a positive finite number"),
        ("adam[lr=0]", "learning rate must be a positive finite number"),
        ("sgd[lr]", "write key=value"),
        ("colour:red", "unknown kind"),
        ("adam[lr=0.1", "unbalanced"),
    ],
)
def test_bad_selections_name_the_problem(plugin_set, text, fragment):
    with pytest.raises(UsageError, match=fragment):
        select(plugin_set.registry, text)
