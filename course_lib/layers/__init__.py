"""Layers: each maps ``x`` to ``out`` in ``forward`` and ``dout`` to ``dx`` in ``backward``."""

from .base import Layer, check_input
