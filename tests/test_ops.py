from __future__ import annotations

import pytest
import torch

import musictag.stages.ops as ops
from musictag.stages.ops import conv2d_fast_input_grad, conv2d_max_over_height


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


@pytest.mark.parametrize("slice_elements, calls", [(1 << 22, 1), (2 * 4 * 6 * 10, 4), (1, 7)])
def test_conv_max_over_height_in_batch_slices_equals_one_call(monkeypatch, slice_elements, calls):
    torch.manual_seed(0)
    x = torch.randn(7, 1, 12, 10, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 1, 7, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    monkeypatch.setattr(ops, "MAX_SLICE_ELEMENTS", slice_elements)  # output per item: 4 x 6 x 10
    seen = []
    conv2d = torch.nn.functional.conv2d
    monkeypatch.setattr(
        ops.F, "conv2d", lambda part, *a, **k: seen.append(len(part)) or conv2d(part, *a, **k)
    )
    out = conv2d_max_over_height(x, weight, bias, (0, 1))
    assert len(seen) == calls and sum(seen) == 7  # 7 items: one call, slices of 2 (the last 1), of 1
    reference = conv2d(x, weight, bias, padding=(0, 1)).amax(dim=2)
    assert out.shape == (7, 4, 10)
    torch.testing.assert_close(out, reference, rtol=0, atol=0)
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, [x, weight, bias], grad)
    for a, b in zip(ours, torch.autograd.grad(reference, [x, weight, bias], grad), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_musictag_lets_openmp_threads_sleep_unless_told(given, expected):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, sys, musictag; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [expected, "False"]  # set before torch is loaded, which reads it once
