"""Front ends: representation → local features (2-D CNN stacks and friends)."""

from musictag.frontends.conv2d import Conv2dStack, ConvBlock2d

__all__ = ["Conv2dStack", "ConvBlock2d"]
