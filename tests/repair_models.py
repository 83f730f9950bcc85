"""Small SavedModels the serving-repair tests build in tmp_path (fixed values, seconds to build).

Each reproduces one export problem of issue 16: a TF1 export tagged `train`,
a graph pinned to /device:GPU:0, a graph whose batch dimension is fixed to 1,
and helpers to load a version the way Serving does and with tf.saved_model.load.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

W = np.array([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]], np.float32)
B = np.array([0.25, -0.5], np.float32)
X = np.array([[1.0, 2.0, 3.0]], np.float32)
X2 = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]], np.float32)


def tf() -> Any:
    from smsurgery.graph.session import import_tf

    return import_tf()


def build_tf1(
    version_dir: Path,
    *,
    tags: tuple[str, ...] = ("serve",),
    device: str | None = None,
    batch: int | None = None,
    reshape_to_const: bool = False,
) -> Path:
    """y = x @ W + b with x [batch, 3] float32, through SavedModelBuilder (the TF1 route).

    `device` pins every op (as a graph frozen on a GPU machine is); `batch=1`
    gives a placeholder of shape [1, 3]; `reshape_to_const` adds a Reshape
    to the constant [1, 2] on the output, a batch size fixed inside the graph.
    """
    t = tf()
    graph = t.Graph()
    with graph.as_default(), t.device(device) if device else contextlib.nullcontext():
        x = t.compat.v1.placeholder(t.float32, [batch, 3], name="x")
        w = t.compat.v1.get_variable("w", initializer=W)
        b = t.compat.v1.get_variable("b", initializer=B)
        y = t.identity(t.matmul(x, w) + b, name="y")
        if reshape_to_const:
            y = t.reshape(y, t.constant([1, 2]), name="y_fixed")
        with t.compat.v1.Session(graph=graph, config=t.compat.v1.ConfigProto(allow_soft_placement=True)) as session:
            session.run(t.compat.v1.global_variables_initializer())
            builder = t.compat.v1.saved_model.Builder(str(version_dir))
            signature = t.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(session, list(tags), signature_def_map={"serving_default": signature})
            builder.save()
    return version_dir


def tf1_outputs(path: Path, tags: list[str], feeds: dict[str, np.ndarray], *, soft: bool = True) -> dict:
    """Run serving_default with the TF1 session loader; `soft=False`: no soft placement, as on a CPU server."""
    t = tf()
    graph = t.Graph()
    config = t.compat.v1.ConfigProto(allow_soft_placement=soft)
    with graph.as_default(), t.compat.v1.Session(graph=graph, config=config) as session:
        meta = t.compat.v1.saved_model.loader.load(session, tags, str(path))
        signature = meta.signature_def["serving_default"]
        fetches = {k: v.name for k, v in signature.outputs.items()}
        return session.run(fetches, {signature.inputs[k].name: v for k, v in feeds.items()})


def tf2_outputs(path: Path, feeds: dict[str, np.ndarray], tags: list[str] | None = None) -> dict:
    t = tf()
    loaded = t.saved_model.load(str(path), tags=tags)
    result = loaded.signatures["serving_default"](**{k: t.constant(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in result.items()}


def make_writable(root: Path) -> Path:
    """The shared real models are read-only folders; a copy must be writable to publish beside it."""
    for folder, _dirs, files in os.walk(root):
        for entry in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chmod(entry, os.stat(entry).st_mode | stat.S_IWUSR)
    return root


def build_tf2(version_dir: Path, *, device: str | None = None, batch: int | None = None) -> Path:
    """tf.saved_model.save of a tf.Module computing y = x @ W + b; `device` pins the ops inside the function."""
    t = tf()

    class Linear(t.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = t.Variable(W)
            self.b = t.Variable(B)

        @t.function(input_signature=[t.TensorSpec([batch, 3], t.float32, name="x")])
        def serve(self, x: Any) -> dict:
            with t.device(device) if device else contextlib.nullcontext():
                return {"y": t.matmul(x, self.w) + self.b}

    module = Linear()
    t.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})
    return version_dir


def build_keras_saved(version_dir: Path) -> Path:
    """A small Keras 3 model (Dense, BatchNormalization, trained one epoch) saved with tf.saved_model.save.

    Saved that way (not `model.export`), the TF1 loader cannot run it.
    """
    t = tf()
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    model.compile("adam", "mse")
    model.fit(np.ones((8, 4), np.float32), np.ones((8, 2), np.float32), epochs=1, verbose=0)
    t.saved_model.save(model, str(version_dir))
    return version_dir


def build_tf1_adam(version_dir: Path, *, resource: bool = False) -> Path:
    """y = x @ W + b trained one Adam step, exported with SavedModelBuilder: the checkpoint holds the
    optimizer's slots (w/Adam, w/Adam_1, ...), beta powers and global_step, which no signature reads."""
    t = tf()
    graph = t.Graph()
    with graph.as_default(), t.compat.v1.Session(graph=graph) as session:
        x = t.compat.v1.placeholder(t.float32, [None, 3], name="x")
        w = t.compat.v1.get_variable("w", initializer=W, use_resource=resource)
        b = t.compat.v1.get_variable("b", initializer=B, use_resource=resource)
        y = t.identity(t.matmul(x, w) + b, name="y")
        step = t.compat.v1.train.get_or_create_global_step()
        train = t.compat.v1.train.AdamOptimizer(0.1).minimize(t.reduce_sum(t.square(y - 1.0)), global_step=step)
        session.run(t.compat.v1.global_variables_initializer())
        session.run(train, {x: X2})
        builder = t.compat.v1.saved_model.Builder(str(version_dir))
        signature = t.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": signature})
        builder.save()
    return version_dir


def build_tf2_adam(version_dir: Path) -> Path:
    """A tf.Module computing y = x @ W + b with a Keras Adam optimizer attached as an attribute, after one
    step: tf.saved_model.save writes the optimizer's variables into the checkpoint and the object graph."""
    t = tf()
    import keras

    class Linear(t.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = t.Variable(W, name="w")
            self.b = t.Variable(B, name="b")
            self.optimizer = keras.optimizers.Adam(0.1)

        @t.function(input_signature=[t.TensorSpec([None, 3], t.float32, name="x")])
        def serve(self, x: Any) -> dict:
            return {"y": t.matmul(x, self.w) + self.b}

    module = Linear()
    with t.GradientTape() as tape:
        loss = t.reduce_sum(t.square(module.serve(t.constant(X2))["y"] - 1.0))
    gradients = tape.gradient(loss, [module.w, module.b])
    module.optimizer.apply_gradients(zip(gradients, [module.w, module.b], strict=True))
    t.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})
    return version_dir
