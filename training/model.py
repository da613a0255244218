"""The multi-task ResNet-50: one trunk, a body-region head and a dense fracture map.

Input: (size, size, 1) grayscale in [0, 1], the output of `app.xray.to_model_input`; the
size is a multiple of 32 (ResNet-50's stride). Scaling to what ResNet-50 expects lives
inside the model, so a model file is self-contained.

Outputs (by name):
  region        softmax over REGION_NAMES, the data's finer anatomy (wrist, forearm, ...)
  part          the region probabilities summed into PART_NAMES (what the app routes on)
  fracture_map  sigmoid per cell of the stride-16 feature grid and FRACTURE_HEADS column:
                the probability that this cell holds a fracture (trained with the data's
                fracture boxes; Li et al., CVPR 2018)
  fracture      sigmoid per FRACTURE_HEADS column: the map's cells pooled by log-sum-exp,
                trained end to end with the image label (multiple-instance learning)
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from app.diagnosis.layers import LogSumExpPool
from app.diagnosis.value import SUPPORTED_PARTS

PART_NAMES = (*SUPPORTED_PARTS, "other")
# The manifest's `region` column. Learning wrist apart from hand and humerus apart from
# shoulder is what keeps neighbouring anatomy out of the supported parts.
REGION_NAMES = ("elbow", "hand", "finger", "shoulder", "wrist", "forearm", "humerus", "leg", "hip", "mixed")
PART_OF_REGION = {"elbow": "elbow", "hand": "hand", "finger": "hand", "shoulder": "shoulder"}
# The "any" head learns fracture from every image, including those of unknown part;
# it trains the trunk on fracture features and is not used to route.
FRACTURE_HEADS = (*SUPPORTED_PARTS, "any")
MAP_STRIDE = 16

# keras.applications.resnet50 "caffe" preprocessing: BGR channel means on a 0..255 scale.
_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def part_of_region(region: str) -> str:
    return PART_OF_REGION.get(region, "other")


def region_to_part_matrix() -> np.ndarray:
    matrix = np.zeros((len(REGION_NAMES), len(PART_NAMES)), dtype=np.float32)
    for row, region in enumerate(REGION_NAMES):
        matrix[row, PART_NAMES.index(part_of_region(region))] = 1.0
    return matrix


def build_model(input_size: int, init: str = "none", dropout: float = 0.3) -> keras.Model:
    """`init`: "none" (random), "imagenet" (Keras downloads the weights), or a path to a
    .keras / .weights.h5 file whose ResNet-50 trunk weights are copied in."""
    if input_size % 32:
        raise ValueError(f"--input-size {input_size}: must be a multiple of 32 (ResNet-50's stride)")
    inputs = keras.Input((input_size, input_size, 1), name="xray")
    x = layers.Rescaling(255.0, name="to_0_255")(inputs)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = layers.Normalization(mean=_IMAGENET_BGR_MEAN, variance=(1.0, 1.0, 1.0), name="imagenet_mean")(x)
    resnet = keras.applications.ResNet50(
        include_top=False,
        weights="imagenet" if init == "imagenet" else None,
        input_shape=(input_size, input_size, 3),
        name="resnet50_base",
    )
    # The same layers, also giving the stride-16 stage: the map needs its finer grid.
    trunk = keras.Model(resnet.input, [resnet.get_layer("conv4_block6_out").output, resnet.output], name="resnet50")
    stage4, stage5 = trunk(x)
    pooled = layers.GlobalAveragePooling2D(name="pool")(stage5)
    pooled = layers.Dropout(dropout, name="dropout")(pooled)
    # Heads compute in float32 even under mixed precision: probabilities near 0 or 1 need
    # more than bfloat16's 8 bits, and so do the losses on them.
    region = layers.Dense(len(REGION_NAMES), activation="softmax", name="region", dtype="float32")(pooled)
    part = layers.Dense(len(PART_NAMES), use_bias=False, trainable=False, name="part", dtype="float32")
    part_probabilities = part(region)
    part.set_weights([region_to_part_matrix()])

    # Fracture map: stage 5's context brought up to stage 4's grid, two 1x1 convolutions.
    context = layers.UpSampling2D(2, interpolation="bilinear", name="stage5_up")(stage5)
    grid = layers.Concatenate(name="map_features")([stage4, context])
    grid = layers.Dropout(dropout / 2, name="map_dropout")(grid)
    grid = layers.Conv2D(128, 1, activation="relu", name="map_hidden")(grid)
    logits = layers.Conv2D(len(FRACTURE_HEADS), 1, name="map_logits", dtype="float32")(grid)
    fracture_map = layers.Activation("sigmoid", name="fracture_map", dtype="float32")(logits)
    image_logits = LogSumExpPool(name="lse_pool", dtype="float32")(logits)
    fracture = layers.Activation("sigmoid", name="fracture", dtype="float32")(image_logits)
    model = keras.Model(
        inputs,
        {"region": region, "part": part_probabilities, "fracture_map": fracture_map, "fracture": fracture},
        name="bonefrac",
    )
    if init not in ("none", "imagenet"):
        load_init_weights(model, Path(init))
    return model


def any_head_blend(weight: float) -> np.ndarray:
    """(heads, heads) matrix that mixes each part's column with the "any" column:
    (1 - weight) * part + weight * any; the "any" column stays itself."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"any-head weight {weight}: must be between 0 and 1")
    any_column = FRACTURE_HEADS.index("any")
    blend = np.eye(len(FRACTURE_HEADS), dtype=np.float64) * (1.0 - weight)
    blend[any_column, :] += weight
    blend[any_column, any_column] = 1.0
    return blend


def blend_with_any_head(model: keras.Model, weight: float) -> None:
    """Fold the blend into the 1x1 map_logits convolution, in place: every part's cell logit
    becomes (1 - weight) * its own + weight * the "any" head's. The "any" head learns from
    every fractured image, a part's head from that part's only; the mix is linear, so it costs
    nothing at inference, and the image score stays the log-sum-exp pool of the map shown."""
    layer = model.get_layer("map_logits")
    kernel, bias = layer.get_weights()
    blend = any_head_blend(weight)
    layer.set_weights([(kernel.astype(np.float64) @ blend).astype(kernel.dtype), (bias @ blend).astype(bias.dtype)])


def average_with(model: keras.Model, files: list[Path]) -> None:
    """Replace the model's weights, in place, by the uniform average of its own and those of
    `files` (models of the same architecture and input size, e.g. the earlier stages of one
    fine-tuning chain): a weight average of neighbouring checkpoints is steadier than any one of
    them, at no cost at inference."""
    others = []
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"--average-with {path}: file not found")
        other = keras.models.load_model(path, compile=False)
        same_shapes = [w.shape for w in other.get_weights()] == [w.shape for w in model.get_weights()]
        if other.input_shape != model.input_shape or not same_shapes:
            raise ValueError(f"--average-with {path}: another architecture or input size than this run's model")
        others.append(other.get_weights())
    stacks = zip(model.get_weights(), *others, strict=True)
    model.set_weights([np.mean(np.stack(stack), axis=0).astype(stack[0].dtype) for stack in stacks])


def load_init_weights(model: keras.Model, path: Path) -> None:
    """Start from another model file (a previous run, possibly at another input size): its
    ResNet-50 trunk, and its heads too where their shapes match (same task layout)."""
    if not path.exists():
        raise FileNotFoundError(f"--init {path}: file not found")
    if path.name.endswith(".weights.h5"):
        model.get_layer("resnet50").load_weights(path)
        return
    source = keras.models.load_model(path, compile=False)
    # The trunk's weights in layer order; earlier models nest the plain ResNet-50 under the same name.
    model.get_layer("resnet50").set_weights(source.get_layer("resnet50").get_weights())
    source_layers = {layer.name for layer in source.layers}
    for head in ("region", "map_hidden", "map_logits"):
        if head not in source_layers:
            continue
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
