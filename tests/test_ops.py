from __future__ import annotations

import pytest
import torch

from musictag.stages.ops import conv2d_fast_input_grad


@pytest.mark.parametrize("padding, bias", [((0, 3), True), ((2, 1), False)])
def test_gemm_input_gradient_equals_autograd(padding, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 5, (7, 3), padding=padding, bias=bias).double()
    x = torch.randn(3, 2, 12, 10, dtype=torch.float64, requires_grad=True)
    out = conv2d_fast_input_grad(x, conv)
    torch.testing.assert_close(out, conv(x))
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, [x, *conv.parameters()], grad)
    reference = torch.autograd.grad(conv(x), [x, *conv.parameters()], grad)
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(
        lambda inp: conv2d_fast_input_grad(inp, conv), (x[:1, :, :9, :6].detach().requires_grad_(),)
    )
