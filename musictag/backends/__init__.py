"""Back ends: local features → one vector per chunk."""

from musictag.backends.musicnn import MusicnnBackEnd
from musictag.backends.pooling import Flatten, GlobalMax, GlobalMean, GlobalMeanMax, GlobalMeanMaxL2
from musictag.backends.sequence import GRUBackEnd, TransformerBackEnd

__all__ = [
    "Flatten",
    "GRUBackEnd",
    "GlobalMax",
    "GlobalMean",
    "GlobalMeanMax",
    "GlobalMeanMaxL2",
    "MusicnnBackEnd",
    "TransformerBackEnd",
]
