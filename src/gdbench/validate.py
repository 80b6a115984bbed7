"""Check hyper-parameter values before any run starts, by trying each component once.

Names are checked against signatures while parsing (``selection``); values can only be
judged by the component itself (torch.optim raises ``ValueError`` for a negative beta,
Huber for a non-positive delta), so each distinct choice is built once on a tiny dummy
problem by its kind's probe (``Kind.probe``). ``ValueError`` and ``TypeError`` there are
the user's input, reported as a usage error — unless the user changed nothing, in which
case the plugin's own defaults are at fault and the message says so. Anything else is
left for the run, which records it as status ``error``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .errors import UsageError, one_line
from .lazy import lazy
from .selection import Choice, Selection


def validate_selection(selection: Selection) -> None:
    for choice in selection.all():
        probe: Callable[[Choice], None] = lazy(choice.component.kind_info.probe)
        _try(choice, probe)


def _try(choice: Choice, probe: Callable[[Choice], None]) -> None:
    try:
        probe(choice)
    except (ValueError, TypeError) as exc:
        c = choice.component
        if dict(choice.params) == c.defaults:
            raise UsageError(
                f"{c.qualified_name} from plugin {c.plugin!r} ({c.dist or 'unpackaged'}) "
                f"refuses its own default hyper-parameters: {one_line(exc)}; report this to "
                "the plugin's authors"
            ) from None
        raise UsageError(f"{choice.label()}: bad hyper-parameter value: {one_line(exc)}") from None
    except Exception:
        pass  # a fault of the plugin, not of the input: the run will record it


def probe_optimizer(choice: Choice) -> None:
    param = torch.zeros(1, requires_grad=True)
    choice.component.fn([param], **choice.kwargs())


def probe_loss(choice: Choice) -> None:
    prediction = torch.zeros(3, 1)
    out = choice.component.fn(prediction, torch.ones(3, 1), **choice.kwargs())
    if not isinstance(out, torch.Tensor) or out.shape != prediction.shape:
        shape = getattr(out, "shape", type(out).__name__)
        raise TypeError(f"loss must return one value per element, shape (3, 1); got {shape}")


def probe_init(choice: Choice) -> None:
    g = torch.Generator().manual_seed(0)
    choice.component.fn(torch.empty(1, 1), torch.empty(1), g, **choice.kwargs())
