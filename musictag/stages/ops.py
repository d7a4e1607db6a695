"""Custom operations where PyTorch's CPU kernels are slow for the shapes of tagging models."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class _Conv2dGemmInputGrad(torch.autograd.Function):
    """``F.conv2d`` (stride 1, no dilation, one group) whose input gradient is one GEMM + ``fold``.

    oneDNN's backward-data pass is slow for convolutions with few input channels, the first layer of
    every spectrogram CNN, whose input gradient trains the input BatchNorm: ~6x slower than computing
    the same gradient as ``Wᵀ · grad_out`` followed by col2im for MusiCNN's timbral filters (1 → 204
    channels, 67x7 and 38x7), ~3x for the FCN's first 3x3 layer. The weight and bias gradients still
    use PyTorch's own kernel.
    """

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int]
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        pad_h, pad_w = ctx.padding
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            batch, out_channels = grad_out.shape[:2]
            cols = torch.matmul(
                weight.reshape(out_channels, -1).t(), grad_out.reshape(batch, out_channels, -1)
            )
            height, width = x.shape[2] + 2 * pad_h, x.shape[3] + 2 * pad_w
            full = F.fold(cols, (height, width), weight.shape[2:])
            grad_x = full[:, :, pad_h : height - pad_h, pad_w : width - pad_w]
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_out,
                x,
                weight,
                [weight.shape[0]] if ctx.has_bias else None,
                [1, 1],
                list(ctx.padding),
                [1, 1],
                False,
                [0, 0],
                1,
                [False, bool(ctx.needs_input_grad[1]), bool(ctx.has_bias and ctx.needs_input_grad[2])],
            )
        return grad_x, grad_w, grad_b, None


#: Convolutions with at most this many input channels take the GEMM input gradient.
FEW_INPUT_CHANNELS = 8


def conv2d_fast_input_grad(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    """``conv(x)``; on CPU, for a stride-1 conv with few input channels whose input needs a gradient,
    through :class:`_Conv2dGemmInputGrad`. Elsewhere exactly ``conv(x)``."""
    if x.device.type != "cpu" or not x.requires_grad or torch.is_autocast_enabled("cpu"):
        return conv(x)
    if conv.in_channels > FEW_INPUT_CHANNELS:
        return conv(x)
    if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1 or isinstance(conv.padding, str):
        return conv(x)
    return _Conv2dGemmInputGrad.apply(x, conv.weight, conv.bias, tuple(conv.padding))


#: :func:`conv2d_max_over_height` convolves a slice of the batch at a time whose output holds at most
#: this many elements (16 MB of float32: it stays in the CPU's cache until the max reads it).
MAX_SLICE_ELEMENTS = 1 << 22


def conv2d_max_over_height(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int]
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding).amax(dim=2)``: ``(B, C, T')``, the same values.

    On the CPU the batch is convolved a slice at a time, each slice's output small enough to stay in
    the cache for the max (:data:`MAX_SLICE_ELEMENTS`): MusiCNN's timbral conv output of 10 patches is
    90 MB, written to memory in oneDNN's blocked layout, reordered and read back; slice by slice the
    front end takes ~35 % less CPU time. Elsewhere (a GPU, ``torch.compile``, ONNX export, where the
    batch is symbolic) it is one call.
    """
    out_h = x.shape[2] + 2 * padding[0] - weight.shape[2] + 1
    out_w = x.shape[3] + 2 * padding[1] - weight.shape[3] + 1
    step = max(1, MAX_SLICE_ELEMENTS // max(1, weight.shape[0] * out_h * out_w))
    whole = x.device.type != "cpu" or torch.compiler.is_compiling() or torch.jit.is_tracing()
    if whole or step >= x.shape[0]:
        return F.conv2d(x, weight, bias, padding=padding).amax(dim=2)
    return torch.cat([F.conv2d(part, weight, bias, padding=padding).amax(dim=2) for part in x.split(step)])
