"""The optimizers follow the papers' update rules, checked step by step by hand."""

import pytest
import torch

from gdbench_signsgd.optim import Lion, SignSGD
from gdbench_signsgd.plugin import quantile


def step(opt, param, grad):
    param.grad = torch.tensor(grad, dtype=param.dtype)
    opt.step()
    return param.detach().tolist()


def test_signsgd_moves_each_entry_by_lr_against_the_sign_of_its_gradient():
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = SignSGD([x], lr=0.1)
    assert step(opt, x, [3.0, -1e-6, 0.0]) == pytest.approx([0.9, -1.9, 0.5])


def test_signum_follows_the_sign_of_the_momentum():
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = SignSGD([x], lr=0.1, momentum=0.9)
    assert step(opt, x, [1.0]) == pytest.approx([-0.1])  # m = 0.1
    assert step(opt, x, [-0.5]) == pytest.approx([-0.2])  # m = 0.09 - 0.05 > 0
    assert step(opt, x, [-1.0]) == pytest.approx([-0.1])  # m = 0.036 - 0.1 < 0


def test_lion_interpolates_with_beta1_and_tracks_momentum_with_beta2():
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = Lion([x], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    # c = 0.1·2 > 0: x = 1 - 0.1·(1 + 0.5·1) = 0.85; m = 0.01·2 = 0.02
    assert step(opt, x, [2.0]) == pytest.approx([0.85])
    # c = 0.9·0.02 + 0.1·(-0.1) = 0.008 > 0 although g < 0: x = 0.85 - 0.1·(1 + 0.425)
    assert step(opt, x, [-0.1]) == pytest.approx([0.85 - 0.1425])


def test_quantile_at_the_median_is_half_the_absolute_error():
    p, y = torch.randn(8, 1), torch.randn(8, 1)
    assert torch.allclose(quantile(p, y, q=0.5), 0.5 * (p - y).abs())
    over = quantile(torch.ones(1), torch.zeros(1), q=0.9)  # over-predicting costs 1 - q
    assert over.item() == pytest.approx(0.1)
