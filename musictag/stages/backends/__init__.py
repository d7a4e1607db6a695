"""Back ends: local features → one vector per chunk."""

from musictag.stages.backends.keras_gru import KerasGRUBackEnd, KerasGRULayer
from musictag.stages.backends.musicnn import MusicnnBackEnd
from musictag.stages.backends.pooling import Flatten, GlobalMax, GlobalMean, GlobalMeanMax, GlobalMeanMaxL2
from musictag.stages.backends.sequence import GRUBackEnd, TransformerBackEnd

__all__ = [
    "KerasGRUBackEnd",
    "KerasGRULayer",
    "Flatten",
    "GRUBackEnd",
    "GlobalMax",
    "GlobalMean",
    "GlobalMeanMax",
    "GlobalMeanMaxL2",
    "MusicnnBackEnd",
    "TransformerBackEnd",
]
