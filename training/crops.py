"""Fracture windows: the fracture heads learn from native-resolution crops of the X-ray.

A whole radiograph squeezed into 96 px loses most fractures. Instead, each image is also
prepared on a larger square canvas (e.g. 320 px, the same letterbox as the app's input), and
the fracture heads train on `window`-sized crops of it: crops around the data's fracture
boxes are positive; crops of normal images, and crops of fractured images that miss every
box, are negative. Negatives from the fractured images themselves matter: a crop's label
then depends on what is in it, not on which dataset the picture came from.

The body-part head still trains on the whole image at `window` px, through the same trunk.
At inference (`app.diagnosis.window`) the canvas is cut into overlapping windows of the
crop size and the fracture probability is that of the most suspicious one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
from PIL import Image, UnidentifiedImageError

from app.xray.preprocess import letterbox_offsets
from training.data import Sample
from training.model import SUPPORTED_PARTS
from training.targets import fracture_targets, part_targets

# How much of each epoch the "other" body parts (leg, hip, forearm, wrist, humerus) take:
# they teach the part head what is out of scope, and the "any" fracture head, but would
# otherwise be half of every epoch.
OTHER_WHOLE_SHARE = 0.5  # of the in-scope whole images
OTHER_CROP_SHARE = 0.33  # of the "other" images, one crop each
BOX_MARGIN = 4.0  # canvas px around a box that a negative crop must also avoid


@dataclass(frozen=True)
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Rect, margin: float = 0.0) -> bool:
        return not (
            self.x1 + margin <= other.x0
            or other.x1 + margin <= self.x0
            or self.y1 + margin <= other.y0
            or other.y1 + margin <= self.y0
        )


@dataclass(frozen=True)
class Item:
    """One training example of an epoch: a whole image (part task) or a crop (fracture task)."""

    index: int  # into the pixel arrays
    sample: Sample  # for a crop, `fractured` is the crop's own label
    crop: tuple[int, int] | None = None  # top-left corner on the canvas; None = whole image


# EXIF orientation -> where a normalised stored point (x, y) appears once the reader has
# turned the image upright (ImageOps.exif_transpose), and whether width and height swap.
_UPRIGHT = {
    2: (lambda x, y: (1 - x, y), False),
    3: (lambda x, y: (1 - x, 1 - y), False),
    4: (lambda x, y: (x, 1 - y), False),
    5: (lambda x, y: (y, x), True),
    6: (lambda x, y: (1 - y, x), True),
    7: (lambda x, y: (1 - y, 1 - x), True),
    8: (lambda x, y: (y, 1 - x), True),
}


def upright(sample: Sample) -> Sample:
    """The sample's size and boxes as the reader sees the image: the data's boxes are on the
    stored pixels, the reader turns EXIF-rotated photos upright."""
    try:
        with Image.open(sample.path) as image:
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError):
        return sample
    if orientation not in _UPRIGHT:
        return sample
    move, swap = _UPRIGHT[orientation]
    boxes = []
    for xc, yc, w, h in sample.boxes:
        x, y = move(xc, yc)
        boxes.append((x, y, h, w) if swap else (x, y, w, h))
    width, height = (sample.height, sample.width) if swap else (sample.width, sample.height)
    return dataclasses.replace(sample, boxes=tuple(boxes), width=width, height=height)


def content_rect(sample: Sample, canvas: int) -> Rect:
    """Where the image itself lies on the letterboxed canvas."""
    if not (sample.width and sample.height):
        return Rect(0.0, 0.0, float(canvas), float(canvas))
    x0, y0, side = letterbox_offsets(sample.width, sample.height)
    scale = canvas / side
    return Rect(x0 * scale, y0 * scale, (x0 + sample.width) * scale, (y0 + sample.height) * scale)


def box_rects(sample: Sample, canvas: int) -> list[Rect]:
    content = content_rect(sample, canvas)
    width, height = content.x1 - content.x0, content.y1 - content.y0
    return [
        Rect(
            content.x0 + (xc - w / 2) * width,
            content.y0 + (yc - h / 2) * height,
            content.x0 + (xc + w / 2) * width,
            content.y0 + (yc + h / 2) * height,
        )
        for xc, yc, w, h in sample.boxes
    ]


def _corner(centre: float, window: int, canvas: int) -> int:
    return int(np.clip(round(centre - window / 2), 0, canvas - window))


def positive_crop(rng: np.random.Generator, box: Rect, canvas: int, window: int) -> tuple[int, int]:
    """A window holding the box's centre, shifted at random by up to a quarter window."""
    shift = window / 4
    cx = (box.x0 + box.x1) / 2 + rng.uniform(-shift, shift)
    cy = (box.y0 + box.y1) / 2 + rng.uniform(-shift, shift)
    return _corner(cx, window, canvas), _corner(cy, window, canvas)


# Says whether the crop at (x, y) of image `index` shows anatomy rather than empty background.
CropCheck = Callable[[int, int, int], bool]


def negative_crop(
    rng: np.random.Generator,
    content: Rect,
    canvas: int,
    window: int,
    avoid: list[Rect],
    shows_anatomy: Callable[[int, int], bool] = lambda x, y: True,
    tries: int = 20,
) -> tuple[int, int] | None:
    """A window centred anywhere on the image that touches none of `avoid`, preferably one
    that shows anatomy (empty background is too easy a negative); None if none found."""
    fallback = None
    for _ in range(tries):
        x = _corner(rng.uniform(content.x0, content.x1), window, canvas)
        y = _corner(rng.uniform(content.y0, content.y1), window, canvas)
        crop = Rect(x, y, x + window, y + window)
        if not any(crop.overlaps(box, BOX_MARGIN) for box in avoid):
            if shows_anatomy(x, y):
                return x, y
            fallback = fallback or (x, y)
    return fallback


def plan_epoch(
    samples: list[Sample], rng: np.random.Generator, canvas: int, window: int, check: CropCheck | None = None
) -> list[Item]:
    """The whole images and crops of one epoch. Every in-scope image (elbow, hand, shoulder)
    is seen whole and cropped; fractured ones give a positive and a negative crop."""
    in_scope = [i for i, s in enumerate(samples) if s.part in SUPPORTED_PARTS]
    other = [i for i, s in enumerate(samples) if s.part == "other"]
    items = [Item(i, samples[i]) for i in in_scope]
    whole_others = rng.permutation(other)[: int(len(in_scope) * OTHER_WHOLE_SHARE)]
    items += [Item(int(i), samples[i]) for i in whole_others]
    cropped_others = rng.permutation(other)[: int(len(other) * OTHER_CROP_SHARE)]
    for i in [*in_scope, *(int(i) for i in cropped_others)]:
        sample = samples[i]
        content = content_rect(sample, canvas)
        boxes = box_rects(sample, canvas)
        shows_anatomy = (lambda x, y, i=i: check(i, x, y)) if check else (lambda x, y: True)
        if sample.fractured and boxes:
            items.append(Item(i, sample, positive_crop(rng, boxes[rng.integers(len(boxes))], canvas, window)))
            if sample.part not in SUPPORTED_PARTS:
                continue  # one crop per "other" image
            corner = negative_crop(rng, content, canvas, window, boxes, shows_anatomy)
            if corner is not None:
                items.append(Item(i, dataclasses.replace(sample, fractured=0), corner))
        elif not sample.fractured:
            corner = negative_crop(rng, content, canvas, window, [], shows_anatomy)
            if corner is not None:
                items.append(Item(i, sample, corner))
    return items


def item_targets(items: list[Item]) -> dict[str, np.ndarray]:
    """Targets for `training.targets`' losses: whole images teach only the part head, crops
    only the fracture heads (balanced within source, as for whole images)."""
    whole = [n for n, item in enumerate(items) if item.crop is None]
    crops = [n for n, item in enumerate(items) if item.crop is not None]
    part = np.zeros((len(items), part_targets([]).shape[1]), dtype=np.float32)
    fracture = np.zeros((len(items), fracture_targets([]).shape[1]), dtype=np.float32)
    if whole:
        part[whole] = part_targets([items[n].sample for n in whole])
    if crops:
        fracture[crops] = fracture_targets([items[n].sample for n in crops])
    return {"part": part, "fracture": fracture}


class WindowData(keras.utils.PyDataset):
    """Batches of whole images (`whole`, N x window x window uint8) and crops of the canvases
    (`canvases`, N x canvas x canvas uint8). Training data draws new crops at the start of
    every epoch (`EpochCrops` calls `start_epoch`), reproducibly from the seed and the epoch
    number, so a resumed run draws what an uninterrupted one would have."""

    def __init__(
        self,
        whole: np.ndarray,
        canvases: np.ndarray,
        samples: list[Sample],
        batch_size: int,
        seed: int,
        augment: keras.Sequential | None = None,
    ) -> None:
        super().__init__()
        self.whole, self.canvases, self.samples = whole, canvases, [upright(s) for s in samples]
        self.window, self.canvas = whole.shape[1], canvases.shape[1]
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self._mean_brightness = canvases.reshape(len(canvases), -1).mean(axis=1)
        self.epoch = 0
        self.length = 0  # items per epoch, fixed by the first plan (Keras counts steps once)
        self._plan()

    def _plan(self) -> None:
        # Validation (no augmentation) keeps one fixed set of crops, so its loss is comparable
        # between epochs; training draws new crops each epoch, reproducibly from the seed.
        rng = np.random.default_rng([self.seed, self.epoch if self.augment else 0])
        items = plan_epoch(self.samples, rng, self.canvas, self.window, self._shows_anatomy)
        if self.augment is not None:
            items = [items[i] for i in rng.permutation(len(items))]
        # A negative crop is not always found: keep the count constant by repeating items.
        self.length = self.length or len(items)
        items = (items * (self.length // len(items) + 1))[: self.length]
        # One assignment: a batch read while the next epoch is planned sees one plan or the other.
        self.plan = (items, item_targets(items))

    def __len__(self) -> int:
        return int(np.ceil(self.length / self.batch_size))

    def __getitem__(self, batch: int):
        items, targets = self.plan
        rows = range(batch * self.batch_size, min(len(items), (batch + 1) * self.batch_size))
        images = np.stack([self._pixels(items[r]) for r in rows]).astype(np.float32)[..., np.newaxis] / 255.0
        if self.augment is not None:
            images = np.clip(np.asarray(self.augment(images, training=True)), 0.0, 1.0)
        return images, {name: values[rows.start : rows.stop] for name, values in targets.items()}

    def _shows_anatomy(self, index: int, x: int, y: int) -> bool:
        # Bone and soft tissue are brighter than the image's mean; background is darker.
        crop = self.canvases[index, y : y + self.window, x : x + self.window]
        return float(crop.mean()) >= self._mean_brightness[index]

    def _pixels(self, item: Item) -> np.ndarray:
        if item.crop is None:
            return self.whole[item.index]
        x, y = item.crop
        return self.canvases[item.index, y : y + self.window, x : x + self.window]

    def start_epoch(self, epoch: int) -> None:
        if self.augment is not None and epoch != self.epoch:
            self.epoch = epoch
            self._plan()


class EpochCrops(keras.callbacks.Callback):
    """Tells the training data which epoch begins (Keras' own epoch number, right after a resume too)."""

    def __init__(self, data: WindowData) -> None:
        super().__init__()
        self.data = data

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.data.start_epoch(epoch)
