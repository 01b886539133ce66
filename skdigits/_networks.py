"""The convolutional network behind CNNDigitClassifier."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._images import scale_pixels


class DigitCNN(nn.Module):
    """Map rows of raw pixels of one image shape to class logits.

    The input is converted to float32 and scaled per batch, so the training data can stay in
    its own dtype (uint8 MNIST stays uint8). Each stage is a 3x3 convolution, batch norm and
    ReLU, then 2x2 max pooling while the feature map is large enough; global average pooling
    and one linear layer give the logits. Only the pooling depends on the image size, so the
    same design serves 8x8 and 28x28 digits.

    Parameters
    ----------
    image_shape : tuple of two int
        ``(height, width)`` of the images.
    n_classes : int
        Number of output logits.
    channels : tuple of int
        Output channels of each convolutional stage.
    dropout : float
        Dropout probability before the linear layer.
    augment : float
        Strength of random affine augmentation while training; 0 turns it off.
    pixel_low, pixel_span : float
        Learned pixel range, see :func:`skdigits._images.pixel_range`.
    """

    def __init__(
        self,
        image_shape,
        n_classes,
        channels=(32, 64, 128),
        dropout=0.1,
        augment=0.0,
        pixel_low=0.0,
        pixel_span=1.0,
    ):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.augment = augment
        self.register_buffer("pixel_low", torch.tensor(pixel_low, dtype=torch.float32))
        self.register_buffer("pixel_span", torch.tensor(pixel_span, dtype=torch.float32))
        height, width = self.image_shape
        layers = []
        in_channels = 1
        for out_channels in channels:
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            pool = (min(height, 2), min(width, 2))
            if pool != (1, 1):
                layers.append(nn.MaxPool2d(pool))
                height, width = height // pool[0], width // pool[1]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(in_channels, n_classes),
        )

    def forward(self, X):
        x = scale_pixels(X.to(torch.float32), self.pixel_low, self.pixel_span)
        x = x.view(-1, 1, *self.image_shape)
        if self.training and self.augment > 0:
            x = random_affine(x, self.augment)
        return self.head(self.features(x))


def random_affine(images, strength):
    """Return ``images`` each moved by its own random rotation, scaling and shift.

    At ``strength=1`` rotations reach 12 degrees, scaling 10% and shifts 10% of the image
    size; done for the whole batch at once with one sampling grid.
    """
    n = images.shape[0]

    def uniform(*shape):
        return (torch.rand(*shape, device=images.device) * 2 - 1) * strength

    angle = uniform(n) * math.radians(12)
    scale = 1 + uniform(n) * 0.1
    shift = uniform(n, 2) * 0.2  # affine_grid coordinates span -1..1, so 0.2 is 10%
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, images.shape, align_corners=False)
    # Replicating the border keeps the background colour, dark or light.
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)
