"""Small TF2 and Keras 3 models whose intermediate values are known by another route.

Built in the tests from fixed seeds (each a few KB): a Keras conv model with
GlobalAveragePooling2D (the pooled value is also a Keras sub-model's
output), a functional model with two inputs and two outputs, and a
tf.Module whose nested tf.functions (serve -> middle -> inner, and a While
loop in middle) compute a hidden value that a second signature `features`
returns by itself.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

SEED = 1313


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    keras.utils.set_random_seed(SEED)
    return keras


def _export(model, path: Path) -> None:
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        model.export(str(path))


def keras_conv(base: Path):
    """Keras 3 `model.export` of conv -> pool (GlobalAveragePooling2D) -> probs; returns the model."""
    keras = _keras()
    inputs = keras.Input(shape=(16, 16, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs, name="classifier")
    _export(model, base / "1")
    return model


def keras_two_in_two_out(base: Path, *, saved_model_save: bool = False):
    """A functional model with inputs a, b and outputs score, aux (dict outputs); returns the model."""
    keras = _keras()
    import tensorflow as tf

    a = keras.Input(shape=(4,), name="a")
    b = keras.Input(shape=(3,), name="b")
    joint = keras.layers.Dense(5, activation="tanh", name="joint")(keras.layers.Concatenate(name="cat")([a, b]))
    score = keras.layers.Dense(1, name="score")(joint)
    aux = keras.layers.Dense(2, activation="softmax", name="aux")(joint)
    model = keras.Model({"a": a, "b": b}, {"score": score, "aux": aux}, name="two")
    if saved_model_save:
        tf.saved_model.save(model, str(base / "1"))
    else:
        _export(model, base / "1")
    return model


def nested_module(base: Path) -> None:
    """tf.Module: serving_default = serve -> middle (While loop) -> inner; features = inner alone."""
    import tensorflow as tf

    rng = np.random.RandomState(SEED)

    class Nested(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(rng.normal(size=(3, 4)).astype(np.float32), name="w")
            self.v = tf.Variable(rng.normal(size=(4, 2)).astype(np.float32), name="v")

        @tf.function
        def inner(self, x):
            return tf.nn.relu(tf.matmul(x, self.w) + 0.1, name="hidden")

        @tf.function
        def middle(self, x):
            hidden = self.inner(x)
            _, looped = tf.while_loop(
                lambda i, acc: i < 3, lambda i, acc: (i + 1, acc * 0.5 + 1.0), [tf.constant(0), hidden]
            )
            return tf.matmul(looped, self.v)

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def serve(self, x):
            return {"y": self.middle(x)}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def features(self, x):
            return {"hidden": self.inner(x)}

    module = Nested()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve,
                                                             "features": module.features})  # fmt: skip
