"""Keras layers of our own that a saved model file refers to. The app registers them before it
loads a model (the Diagnoser imports this module with Keras), so it needs nothing from
`training/`; training builds its models from them."""

from __future__ import annotations

import keras
from keras import layers, ops

# Log-sum-exp sharpness: between the mean of the cells (0) and their maximum (infinity).
# At 5 one clearly suspicious cell carries the image, as a fracture is a small finding.
LSE_SHARPNESS = 5.0


@keras.saving.register_keras_serializable(package="bonefrac")
class LogSumExpPool(layers.Layer):
    """(N, H, W, C) cell logits -> (N, C) image logits: (1/r) log(mean(exp(r * z)))."""

    def __init__(self, sharpness: float = LSE_SHARPNESS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sharpness = sharpness

    def call(self, logits):
        flat = ops.reshape(logits, (ops.shape(logits)[0], -1, ops.shape(logits)[-1]))
        cells = ops.cast(ops.shape(flat)[1], flat.dtype)
        return (ops.logsumexp(self.sharpness * flat, axis=1) - ops.log(cells)) / self.sharpness

    def get_config(self) -> dict:
        return {**super().get_config(), "sharpness": self.sharpness}
