"""The convolutional network behind CNNDigitClassifier."""

import itertools
import math
import operator

import torch
import torch.nn.functional as F
from torch import nn

from ._images import scale_pixels

# Images at least this large start with a stride-2 convolution: at MNIST's 28x28 it skips
# the full-resolution feature maps, whose memory traffic dominates CPU time, at no cost in
# accuracy. Smaller images keep every pixel: on 16x16 scans (USPS, Semeion) a strided stem
# left 8x8 maps and cost 0.3-0.4 points (benchmarks/other_data.py), on the 8x8 digits more.
STRIDED_STEM_MIN_SIZE = 20
# The size skdigits 0.1 strided from: model files without a stored stem were trained by it.
LEGACY_STRIDED_STEM_MIN_SIZE = 16
# The feature map is average-pooled to at most this many cells per side before the dense
# layer, so large images don't make the dense layer huge.
MAX_HEAD_CELLS = 4
# Bounds on the network's size, far beyond any digit CNN: they keep the cost of building the
# network a model file describes bounded (a file asking for a million stages is refused).
MAX_STAGES = 10
MAX_CHANNELS = 1024
MAX_CONVS_PER_STAGE = 8
MAX_HIDDEN_UNITS = 16384
MAX_NETWORKS = 16
# convs_per_stage="auto": a second convolution in the last stage but one (the 14x14 stage of
# 16 channels on MNIST), which makes a training step about 1.3x as long. With the classifier's
# shorter warm-up (warmup_fraction) it raised the defaults from 99.46% to 99.54% on MNIST over
# four seeds; a second convolution in the last stage instead gained as much but cost 1.5x
# the training time and 2x the prediction time (BENCHMARKS.md).
AUTO_DEEPENED_STAGE = -2
# channels="auto": the stages' widths. Images get twice the channels where that costs
# little:
# - under WIDE_BELOW_SIZE pixels a side, whose first maps are at most 11x11, against the
#   14x14 that MNIST's strided stem leaves, so the wider network costs about what the
#   defaults cost on MNIST (a fit on MNIST averaged down to 8x8 took 13-14 s, one on MNIST
#   13-15 s). The 8x8 digits (5-fold): 99.62% -> 99.76% over eight seeds; MNIST at 8x8:
#   97.65% -> 97.99% over four, every seed higher; 1.15-1.6x the fit time;
# - on small data (the classifier's small_data: under 10,000 training images) of MNIST's
#   size, where a fit takes seconds: 1,000 MNIST images 98.43% -> 98.72%, 3,000 99.05% ->
#   99.28% over six seeds, in 1.3-1.8x the time. The 16x16 stand-ins for scans gained
#   nothing (usps-like +0.08, semeion-like -0.18 points), so they keep the narrower network.
# Colour 8x8 digits gain too (95.89% -> 96.71% over six seeds) at the colour learning rate
# of the classifier's lr="auto"; at the grey images' rate the wider network stayed near
# chance on them (BENCHMARKS.md). Both choices have the same number of stages, which
# convs_per_stage is checked against.
AUTO_CHANNELS = (16, 16, 64)
AUTO_CHANNELS_WIDE = (32, 32, 128)
WIDE_BELOW_SIZE = 12
AUTO_STAGES = len(AUTO_CHANNELS)
# The augmentation's fill, an image's background, is the median of at most this many of its
# pixels, evenly spaced: the median of all MNIST's 784 took 1.4 ms of a 20 ms training step,
# of every fourth 0.17 ms. A digit covers a small part of its image, so the sample finds the
# same paper; images of up to 16x16 pixels use every pixel.
BACKGROUND_SAMPLES = 256
# Random stroke width: each image's ink is blended towards its 3x3 dilation (thicker
# strokes) or erosion (thinner ones), by up to the strength. One pixel is a large part of a
# stroke, so the blend is what makes the change gradual.
STROKE_KERNEL = 3


def resolve_stem(stem, image_shape, min_size=STRIDED_STEM_MIN_SIZE):
    """Return the first convolution, "strided" or "full", that ``stem`` means for the images.

    "auto" strides on images of ``min_size`` pixels a side or more.
    """
    if stem == "auto":
        return "strided" if min(image_shape) >= min_size else "full"
    return stem


def resolve_channels(channels, image_shape, small_data=False):
    """Return the stages' channels that ``channels`` means for the images, as a tuple.

    "auto" is ``AUTO_CHANNELS_WIDE`` on images under ``WIDE_BELOW_SIZE`` pixels a side, or
    of ``STRIDED_STEM_MIN_SIZE`` pixels a side or more in ``small_data``; ``AUTO_CHANNELS``
    otherwise.
    """
    if isinstance(channels, str) and channels == "auto":
        side = min(image_shape)
        wide = side < WIDE_BELOW_SIZE or (small_data and side >= STRIDED_STEM_MIN_SIZE)
        return AUTO_CHANNELS_WIDE if wide else AUTO_CHANNELS
    return check_channels(channels)


def check_channels(channels):
    """Return ``channels`` as a tuple of ints, or raise a ValueError.

    The one check of a network's stages, used by the classifier and the model-file reader:
    1 to ``MAX_STAGES`` positive ints of at most ``MAX_CHANNELS``.
    """
    try:
        # The length first: a crafted model file may list a million stages.
        stages = tuple(map(operator.index, channels)) if len(channels) <= MAX_STAGES else ()
    except TypeError:
        stages = ()
    if not 0 < len(stages) <= MAX_STAGES or not all(0 < c <= MAX_CHANNELS for c in stages):
        raise ValueError(
            f"channels must be 1 to {MAX_STAGES} positive ints of at most {MAX_CHANNELS}, one "
            f"per convolutional stage; got {channels!r:.80}"
        )
    return stages


def check_convs_per_stage(convs_per_stage, n_stages):
    """Return ``convs_per_stage`` as a tuple of one int per stage, or raise a ValueError.

    An int applies to every stage; a tuple gives each of the ``n_stages`` stages its own
    number, 1 to ``MAX_CONVS_PER_STAGE``; "auto" is two convolutions in the last stage but
    one (the only stage of a one-stage network) and one in the others.
    """
    try:
        if isinstance(convs_per_stage, str) and convs_per_stage == "auto":
            deepened = max(n_stages + AUTO_DEEPENED_STAGE, 0)
            convs = tuple(2 if stage == deepened else 1 for stage in range(n_stages))
        elif not isinstance(convs_per_stage, (tuple, list)):
            convs = (operator.index(convs_per_stage),) * n_stages
        elif len(convs_per_stage) == n_stages:  # checked first: a file's list may be huge
            convs = tuple(map(operator.index, convs_per_stage))
        else:
            convs = ()
    except TypeError:
        convs = ()
    if len(convs) != n_stages or not all(0 < n <= MAX_CONVS_PER_STAGE for n in convs):
        raise ValueError(
            f"convs_per_stage must be 'auto', an int or a tuple of one int per stage "
            f"({n_stages} here, as in channels), each 1 to {MAX_CONVS_PER_STAGE}; got "
            f"{convs_per_stage!r:.80}"
        )
    return convs


class ConvBNReLU(nn.Module):
    """Convolution, batch norm and ReLU; batch norm is folded into the convolution at inference.

    Folding computes the convolution's effective weights from the batch-norm statistics on
    each call, which costs microseconds, so the folded form can never go stale after the
    weights change, and saves a full pass over the feature map.
    """

    # While training, whether the ReLU is left to the max pooling that follows (PoolReLU).
    # A class attribute, so that networks pickled before it existed read False.
    relu_after_pooling = False

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        if self.training:
            x = self.bn(self.conv(x))
            return x if self.relu_after_pooling else F.relu(x, inplace=True)
        scale = self.bn.weight * torch.rsqrt(self.bn.running_var + self.bn.eps)
        weight = self.conv.weight * scale.view(-1, 1, 1, 1)
        bias = self.bn.bias - self.bn.running_mean * scale
        x = F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding)
        return F.relu(x, inplace=True)


class PoolReLU(nn.MaxPool2d):
    """Max pooling, then ReLU while training: the ReLU of the ConvBNReLU before it.

    ReLU and max pooling commute, so while training the ReLU of a ConvBNReLU whose
    ``relu_after_pooling`` is set runs here instead, on a map a quarter the size. In a training
    step of the defaults on MNIST, the five ReLUs took 0.52 ms forward and backward, and 0.30
    ms with two of them here (BENCHMARKS.md). The values and gradients are the same. At
    inference the convolution keeps its ReLU (folded with batch norm there), and this only
    pools.
    """

    def forward(self, x):
        x = super().forward(x)
        return F.relu(x, inplace=True) if self.training else x


class DigitCNN(nn.Module):
    """Map rows of raw pixels of one image shape to class logits.

    The input is converted to float32 and scaled per batch, so the training data can stay in
    its own dtype (uint8 MNIST stays uint8). The first stage is a convolution, by default
    with stride 2 on images of 20 pixels a side or more; each further stage is a 3x3
    convolution followed by 2x2 max pooling while the feature map is large enough. A stage
    may hold more than one convolution: the further ones are 3x3, keep the stage's channels
    and come before its pooling. Every convolution is followed by batch norm and ReLU. A
    dense layer over the final feature map then gives the logits.
    Only the downsampling depends on the image size, so the same design serves 8x8 and
    28x28 digits.

    Parameters
    ----------
    image_shape : tuple of two int
        ``(height, width)`` of the images.
    n_classes : int
        Number of output logits.
    channels : tuple of int
        Output channels of each convolutional stage.
    convs_per_stage : int, tuple of int or "auto"
        Convolutions in each stage, one int for every stage or one per stage; "auto" is two
        in the last stage but one and one in the others.
    hidden_units : int
        Width of the dense layer before the output layer.
    dropout : float
        Dropout probability before the output layer.
    augment : float
        Strength of random affine augmentation while training; 0 turns it off.
    stroke : float
        Strength of random stroke-width changes while training, in [0, 1]; 0 turns them
        off. See :func:`random_stroke_width`.
    stem : {"auto", "strided", "full"}
        First convolution: 4x4 with stride 2, or 3x3 at full resolution; "auto" strides on
        images of ``STRIDED_STEM_MIN_SIZE`` pixels a side or more.
    pixel_low, pixel_span : float
        Learned pixel range, see :func:`skdigits._images.pixel_range`.
    in_channels : int
        Channels per image: 1 (grey), 3 (RGB) or 4 (RGBA); rows hold them one plane after
        another.
    """

    def __init__(
        self,
        image_shape,
        n_classes,
        channels=(16, 16, 64),
        convs_per_stage="auto",
        hidden_units=128,
        dropout=0.1,
        augment=0.0,
        stroke=0.0,
        stem="auto",
        pixel_low=0.0,
        pixel_span=1.0,
        in_channels=1,
    ):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.in_channels = in_channels
        self.augment = augment
        self.stroke = stroke
        self.register_buffer("pixel_low", torch.tensor(pixel_low, dtype=torch.float32))
        self.register_buffer("pixel_span", torch.tensor(pixel_span, dtype=torch.float32))
        height, width = self.image_shape
        stem = resolve_stem(stem, self.image_shape)
        if stem == "strided" and min(height, width) < 4:
            # The 4x4 stride-2 convolution would leave no pixel for the stages after it.
            raise ValueError(
                f"stem='strided' needs images of at least 4x4 pixels; these are "
                f"{height}x{width}. Use stem='auto' or 'full'."
            )
        convs = check_convs_per_stage(convs_per_stage, len(channels))
        if stem == "strided":
            layers = [ConvBNReLU(in_channels, channels[0], kernel_size=4, stride=2, padding=1)]
            height, width = height // 2, width // 2
        else:
            layers = [ConvBNReLU(in_channels, channels[0])]
        layers += [ConvBNReLU(channels[0], channels[0]) for _ in range(convs[0] - 1)]
        for (stage_in, stage_out), n_convs in zip(
            itertools.pairwise(channels), convs[1:], strict=True
        ):
            layers.append(ConvBNReLU(stage_in, stage_out))
            layers += [ConvBNReLU(stage_out, stage_out) for _ in range(n_convs - 1)]
            pool = (min(height, 2), min(width, 2))
            if pool != (1, 1):
                layers[-1].relu_after_pooling = True
                layers.append(PoolReLU(pool))
                height, width = height // pool[0], width // pool[1]
        cells = (min(height, MAX_HEAD_CELLS), min(width, MAX_HEAD_CELLS))
        # Pooling a map that already has that size would only cost time (its backward pass
        # is not free); Identity keeps the layer's place, so model files don't change.
        pool = nn.AdaptiveAvgPool2d(cells) if cells != (height, width) else nn.Identity()
        self.features = nn.Sequential(*layers, pool)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels[-1] * cells[0] * cells[1], hidden_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_units, n_classes),
        )
        # oneDNN's convolutions, pooling and batch norm run markedly faster on CPUs with
        # channels-last (NHWC) tensors.
        self.to(memory_format=torch.channels_last)

    def forward(self, X):
        x = scale_pixels(X.to(torch.float32), self.pixel_low, self.pixel_span)
        x = x.view(-1, self.in_channels, *self.image_shape)
        x = x.contiguous(memory_format=torch.channels_last)
        if self.training and (self.augment > 0 or self.stroke > 0):
            x = augment_images(x, self.augment, self.stroke)
        features = self.features(x)
        if self.training and features.requires_grad:
            # The dense layer's flattening copies the channels-last map to the usual layout,
            # so the map's gradient would come back in that layout, and max pooling's
            # backward pass takes a slow path on it (1.5 ms of an 18 ms step on MNIST).
            features.register_hook(_channels_last)
        return self.head(features)


def _channels_last(tensor):
    return tensor.contiguous(memory_format=torch.channels_last)


class DigitEnsemble(nn.Module):
    """Several DigitCNNs of one design, trained side by side, predicting together.

    Each network starts from its own random weights and sees its own random augmentation
    of every batch. While training, the output holds every network's logits, shape
    ``(n_networks, n_images, n_classes)``, so that each network is trained on its own loss
    (see DigitNet.get_loss); at inference it is the log of the networks' mean
    probabilities, which softmax turns back into that mean (soft voting).

    Parameters
    ----------
    n_networks : int
        Number of networks, at least 2.
    **kwargs
        The parameters of :class:`DigitCNN`, the same for every network.
    """

    def __init__(self, n_networks, **kwargs):
        super().__init__()
        self.networks = nn.ModuleList(DigitCNN(**kwargs) for _ in range(n_networks))

    def forward(self, X):
        logits = torch.stack([network(X) for network in self.networks])
        if self.training:
            return logits
        return torch.logsumexp(logits.log_softmax(dim=-1), dim=0) - math.log(len(self.networks))


def augment_images(images, affine, stroke):
    """Return ``images`` each randomly moved, then with its strokes made thinner or thicker.

    Both act on the images less their background, which is each image's median grey level
    per channel (over at most ``BACKGROUND_SAMPLES`` evenly spaced pixels), so they work the
    same on dark paper and light: what moves in from outside the frame is background.

    Parameters
    ----------
    images : tensor of shape (n, channels, height, width)
        The images, on any grey scale.
    affine : float
        Strength of :func:`random_affine`; 0 leaves the images where they are.
    stroke : float
        Strength of :func:`random_stroke_width`; 0 leaves the strokes as they are.
    """
    pixels = images.flatten(2)
    every = -(-pixels.shape[-1] // BACKGROUND_SAMPLES)  # ceiling division
    background = pixels[..., ::every].median(dim=2).values[..., None, None]
    ink = images - background
    if affine > 0:
        ink = random_affine(ink, affine)
    if stroke > 0:
        ink = random_stroke_width(ink, stroke)
    return ink + background


def random_affine(ink, strength):
    """Return ``ink`` (images less their background) each moved by its own random affine map.

    At ``strength=1`` rotations reach 12 degrees, scaling 10% and shifts 10% of the image
    size; done for the whole batch at once with one sampling grid. What moves in from
    outside the frame is 0, the background: replicating the border instead smeared inwards
    the strokes of digits that touch the frame, as 16x16 scans and the 8x8 digits do
    (BENCHMARKS.md, "Other digit data").
    """
    n = ink.shape[0]

    def uniform(*shape):
        return (torch.rand(*shape, device=ink.device) * 2 - 1) * strength

    angle = uniform(n) * math.radians(12)
    scale = 1 + uniform(n) * 0.1
    shift = uniform(n, 2) * 0.2  # affine_grid coordinates span -1..1, so 0.2 is 10%
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # The sampling grid F.affine_grid(theta, align_corners=False) gives, by broadcasting:
    # its batched matrix product is slow on CPU for these shapes (1.3 ms of a 19 ms step).
    height, width = ink.shape[-2:]
    xs = (torch.arange(width, device=ink.device) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=ink.device) * 2 + 1) / height - 1
    xs, ys = xs.view(1, 1, -1), ys.view(1, -1, 1)
    cos, sin, dx, dy = (v.view(-1, 1, 1) for v in (cos, sin, shift[:, 0], shift[:, 1]))
    grid = torch.stack([cos * xs - sin * ys + dx, sin * xs + cos * ys + dy], dim=-1)
    return F.grid_sample(ink, grid, padding_mode="zeros", align_corners=False)


def random_stroke_width(ink, strength):
    """Return ``ink`` (images less their background) with strokes randomly thinned or thickened.

    Each image's ink, made positive (strokes may be darker or lighter than the paper; the
    sign of its sum per channel tells which), is blended towards its 3x3 grey-level
    dilation, which widens every stroke by a pixel on each side, or towards its erosion,
    which narrows it as much, by a fraction drawn uniformly from ``[-strength, strength]``:
    writers' pens differ, and a training set of a few thousand images shows few of them.
    On the 16x16 semeion-like stand-in (1,593 binary images) strength 0.5 gained 0.25
    points (BENCHMARKS.md, "Other digit data"); on the 8x8 digits, where a pixel is an
    eighth of the digit, it cost 0.3.
    """
    n = ink.shape[0]
    sign = torch.where(ink.sum(dim=(2, 3), keepdim=True) >= 0, 1.0, -1.0)
    positive = ink * sign
    amount = ((torch.rand(n, device=ink.device) * 2 - 1) * strength).view(-1, 1, 1, 1)

    def dilate(x):
        return F.max_pool2d(x, STROKE_KERNEL, stride=1, padding=STROKE_KERNEL // 2)

    # Erosion is the dilation of the negative, negated.
    target = torch.where(amount >= 0, dilate(positive), -dilate(-positive))
    return (positive + amount.abs() * (target - positive)) * sign
