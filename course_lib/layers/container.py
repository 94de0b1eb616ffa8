"""Sequential: layers applied one after another."""

from .base import Layer


class Sequential(Layer):
    """``out = layer_k(...layer_2(layer_1(x)))``; backward runs the layers in reverse.

    By the chain rule the gradient flowing into layer i is what layer i+1's
    backward returned, so backward is a loop over the reversed list.
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential takes Layers; argument {i} is a {type(layer).__name__}")
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
