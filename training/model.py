"""The multi-task ResNet-50: one trunk, a body-part head and fracture heads.

Input: (size, size, 1) grayscale in [0, 1], the output of `app.xray.to_model_input` (with
fracture windows, training/crops.py, crops of a larger image are that size too).
Scaling to what ResNet-50 expects lives inside the model, so a model file is
self-contained. Both heads sit on global-average-pooled features with a single
linear layer, so the class activation map (CAM) of any head is exact.

Outputs (by name):
  features  the last convolutional feature map, for the heatmap
  part      softmax over PART_NAMES
  fracture  sigmoid per FRACTURE_HEADS column (elbow, hand, shoulder, any)
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

PART_NAMES = ("elbow", "hand", "shoulder", "other")
SUPPORTED_PARTS = ("elbow", "hand", "shoulder")
# The "any" head learns fracture from every image, including those of unknown part;
# it trains the trunk on fracture features and is not used to route.
FRACTURE_HEADS = (*SUPPORTED_PARTS, "any")

# keras.applications.resnet50 "caffe" preprocessing: BGR channel means on a 0..255 scale.
_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def build_model(input_size: int, init: str = "none", dropout: float = 0.3) -> keras.Model:
    """`init`: "none" (random), "imagenet" (Keras downloads the weights), or a path to a
    .keras / .weights.h5 file whose ResNet-50 trunk weights are copied in."""
    inputs = keras.Input((input_size, input_size, 1), name="xray")
    x = layers.Rescaling(255.0, name="to_0_255")(inputs)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = layers.Normalization(mean=_IMAGENET_BGR_MEAN, variance=(1.0, 1.0, 1.0), name="imagenet_mean")(x)
    trunk = keras.applications.ResNet50(
        include_top=False,
        weights="imagenet" if init == "imagenet" else None,
        input_shape=(input_size, input_size, 3),
    )
    trunk.name = "resnet50"
    features = trunk(x)
    features = layers.Identity(name="features")(features)
    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    pooled = layers.Dropout(dropout, name="dropout")(pooled)
    # Heads compute in float32 even under mixed precision: probabilities near 0 or 1 need
    # more than bfloat16's 8 bits, and so do the losses on them.
    part = layers.Dense(len(PART_NAMES), activation="softmax", name="part", dtype="float32")(pooled)
    fracture = layers.Dense(len(FRACTURE_HEADS), activation="sigmoid", name="fracture", dtype="float32")(pooled)
    model = keras.Model(inputs, {"features": features, "part": part, "fracture": fracture}, name="bonefrac")
    if init not in ("none", "imagenet"):
        load_init_weights(model, Path(init))
    return model


def load_init_weights(model: keras.Model, path: Path) -> None:
    """Start from another model file (a previous run, possibly at another input size): its
    ResNet-50 trunk, and its heads too where their shapes match (same task layout)."""
    if not path.exists():
        raise FileNotFoundError(f"--init {path}: file not found")
    if path.name.endswith(".weights.h5"):
        model.get_layer("resnet50").load_weights(path)
        return
    source = keras.models.load_model(path, compile=False)
    model.get_layer("resnet50").set_weights(source.get_layer("resnet50").get_weights())
    for head in ("part", "fracture"):
        weights = source.get_layer(head).get_weights()
        if [w.shape for w in weights] == [w.shape for w in model.get_layer(head).get_weights()]:
            model.get_layer(head).set_weights(weights)


def as_float32(model: keras.Model, input_size: int) -> keras.Model:
    """The same weights in a float32 model: what we publish, so that inference runs in
    float32 on any CPU whatever precision training used."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        converted = build_model(input_size)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    converted.set_weights(model.get_weights())
    return converted
