"""Back ends: local features → one vector per chunk."""

from musictag.backends.pooling import Flatten, GlobalMax, GlobalMeanMax

__all__ = ["Flatten", "GlobalMax", "GlobalMeanMax"]
