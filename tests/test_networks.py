"""The network and its batch-wise augmentation."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_array_equal

from skdigits._networks import (
    BACKGROUND_SAMPLES,
    DigitCNN,
    DigitEnsemble,
    PoolReLU,
    augment_images,
    random_affine,
    random_stroke_width,
)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (8, 8), (28, 28), (30, 17)])
def test_network_gives_one_logit_per_class_for_any_image_size(shape):
    net = DigitCNN(shape, n_classes=4, channels=(4, 8, 16)).eval()
    rows = torch.randint(0, 256, (5, shape[0] * shape[1]), dtype=torch.uint8)
    assert net(rows).shape == (5, 4)


@pytest.mark.parametrize(
    ("shape", "stem", "first_stride"),
    [
        ((28, 28), "auto", 2),
        ((8, 8), "auto", 1),
        ((28, 28), "full", 1),
        ((8, 8), "strided", 2),
    ],
)
def test_stem_strides_large_images_unless_told_otherwise(shape, stem, first_stride):
    net = DigitCNN(shape, n_classes=3, channels=(4, 8), stem=stem).eval()
    assert net.features[0].conv.stride == (first_stride, first_stride)
    rows = torch.randint(0, 256, (2, shape[0] * shape[1]), dtype=torch.uint8)
    assert net(rows).shape == (2, 3)


@pytest.mark.parametrize("stem", ["full", "strided"])
def test_further_convolutions_keep_the_stage_channels_and_come_before_its_pooling(stem):
    net = DigitCNN(
        (28, 28), n_classes=3, channels=(4, 8, 16), convs_per_stage=(2, 1, 3), stem=stem
    )
    kinds = [
        (type(layer).__name__, getattr(getattr(layer, "conv", None), "out_channels", None))
        for layer in net.features
    ]
    assert kinds == [
        ("ConvBNReLU", 4),
        ("ConvBNReLU", 4),
        ("ConvBNReLU", 8),
        ("PoolReLU", None),
        ("ConvBNReLU", 16),
        ("ConvBNReLU", 16),
        ("ConvBNReLU", 16),
        ("PoolReLU", None),
        ("AdaptiveAvgPool2d" if stem == "full" else "Identity", None),
    ]
    # The further convolutions are 3x3 at the stage's resolution.
    assert all(layer.conv.stride == (1, 1) for layer in net.features[1:] if hasattr(layer, "conv"))
    rows = torch.randint(0, 256, (2, 28 * 28), dtype=torch.uint8)
    assert net.eval()(rows).shape == (2, 3)


def _relu_before_pooling(net):
    """Return a copy of ``net`` whose convolutions apply their ReLU before max pooling."""
    twin = copy.deepcopy(net)
    for i, layer in enumerate(twin.features):
        if isinstance(layer, PoolReLU):
            twin.features[i - 1].relu_after_pooling = False
            twin.features[i] = torch.nn.MaxPool2d(layer.kernel_size)
    return twin


@pytest.mark.parametrize("convs_per_stage", [1, (2, 1, 3)])
def test_relu_after_pooling_trains_as_relu_before_it(convs_per_stage):
    torch.manual_seed(0)
    net = DigitCNN((28, 28), n_classes=3, channels=(4, 8, 16), convs_per_stage=convs_per_stage)
    pools = [i for i, layer in enumerate(net.features) if isinstance(layer, PoolReLU)]
    assert len(pools) == 2
    assert all(net.features[i - 1].relu_after_pooling for i in pools)
    twin = _relu_before_pooling(net)
    assert not any(isinstance(layer, PoolReLU) for layer in twin.features)
    rows = torch.randint(0, 256, (16, 28 * 28), dtype=torch.uint8)
    y = torch.randint(0, 3, (16,))
    outputs, grads = [], []
    for model in (net, twin):
        torch.manual_seed(1)  # the same dropout
        logits = model.train()(rows)
        F.cross_entropy(logits, y).backward()
        outputs.append(logits)
        grads.append([p.grad for p in model.parameters()])
        assert model.eval()(rows).shape == (16, 3)
    assert torch.equal(outputs[0], outputs[1])
    for grad, twin_grad in zip(*grads, strict=True):
        assert torch.equal(grad, twin_grad)
    assert any(g.abs().sum() > 0 for g in grads[0])
    torch.testing.assert_close(net.eval()(rows), twin.eval()(rows), rtol=0, atol=0)


def _shapes(net):
    return {name: tensor.shape for name, tensor in net.state_dict().items()}


def test_an_int_applies_to_every_stage_and_auto_deepens_the_last_stage_but_one():
    def net(convs, channels=(4, 8, 16)):
        return DigitCNN((28, 28), n_classes=3, channels=channels, convs_per_stage=convs)

    assert _shapes(net(2)) == _shapes(net((2, 2, 2)))
    assert _shapes(net("auto")) == _shapes(net((1, 2, 1))) != _shapes(net(1))
    assert _shapes(net("auto", (4, 8))) == _shapes(net((2, 1), (4, 8)))
    assert _shapes(net("auto", (4,))) == _shapes(net(2, (4,)))
    assert _shapes(DigitCNN((28, 28), 3)) == _shapes(
        DigitCNN((28, 28), 3, channels=(16, 16, 64), convs_per_stage=(1, 2, 1))
    )


@pytest.mark.parametrize("convs", [(1,), (1, 2, 3), 0, (1, 9), (1, "2"), 2.5, "deep", "AUTO"])
def test_convs_per_stage_that_do_not_fit_the_stages_are_an_error(convs):
    with pytest.raises(ValueError, match="convs_per_stage must be 'auto', an int or a tuple"):
        DigitCNN((8, 8), n_classes=3, channels=(4, 8), convs_per_stage=convs)


def test_network_scales_raw_pixels_by_the_learned_range():
    rows = torch.randint(0, 256, (6, 64), dtype=torch.uint8)
    torch.manual_seed(0)
    raw = DigitCNN((8, 8), 3, channels=(4,), pixel_low=0.0, pixel_span=255.0).eval()
    torch.manual_seed(0)
    unit = DigitCNN((8, 8), 3, channels=(4,)).eval()
    assert_array_equal(raw(rows).detach(), unit(rows.float() / 255).detach())


def test_augmentation_at_zero_strength_leaves_images_unchanged():
    images = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(random_affine(images, 0.0), images, rtol=0, atol=1e-6)
    torch.testing.assert_close(random_stroke_width(images, 0.0), images, rtol=0, atol=0)
    torch.testing.assert_close(augment_images(images, 0.0, 0.0), images, rtol=0, atol=1e-6)


@pytest.mark.parametrize("background", [0.0, 1.0])
def test_augmentation_moves_each_image_differently_and_keeps_the_background(background):
    images = torch.full((16, 1, 28, 28), background)
    images[:, :, 10:18, 12:16] = 1 - background
    torch.manual_seed(0)
    moved = augment_images(images, 1.0, 0.0)
    assert moved.shape == images.shape
    assert not torch.equal(moved, images)
    assert len({tuple(m.flatten().tolist()) for m in moved}) == 16
    # What comes in from outside the frame is background, dark paper or light.
    torch.testing.assert_close(moved[:, :, 0, :], torch.full_like(moved[:, :, 0, :], background))
    ink = (moved - background).abs().sum((1, 2, 3))
    torch.testing.assert_close(ink, torch.full_like(ink, 32.0), rtol=0.35, atol=0)


def test_augmentation_fills_with_background_rather_than_smearing_strokes_at_the_frame():
    # A digit touching the frame, as 16x16 scans do: a stroke along the left edge. Shifted
    # right, the columns that come in from outside must be background, not copies of it.
    images = torch.zeros(64, 1, 16, 16)
    images[:, :, :, 0] = 1
    torch.manual_seed(0)
    moved = augment_images(images, 1.0, 0.0)
    ink = moved.sum((1, 2, 3))
    assert ink.max() <= 16 * 1.35
    assert moved.min() >= -1e-6


@pytest.mark.parametrize("shape", [(28, 28), (16, 9)])
def test_augmentation_samples_the_grid_affine_grid_would_give(shape):
    # The grid is computed by broadcasting for speed; it must be affine_grid's grid.
    images = torch.rand(32, 3, *shape)
    torch.manual_seed(1)
    moved = augment_images(images, 1.0, 0.0)
    torch.manual_seed(1)
    n = len(images)
    angle = (torch.rand(n) * 2 - 1) * math.radians(12)
    scale = 1 + (torch.rand(n) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2) * 2 - 1) * 0.2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, images.shape, align_corners=False)
    # The background: the median of at most BACKGROUND_SAMPLES evenly spaced pixels.
    every = math.ceil(shape[0] * shape[1] / BACKGROUND_SAMPLES)
    background = images.flatten(2)[..., ::every].median(dim=2).values[:, :, None, None]
    expected = F.grid_sample(images - background, grid, align_corners=False) + background
    torch.testing.assert_close(moved, expected, rtol=0, atol=1e-5)


def _vertical_bars(n, width=2):
    ink = torch.zeros(n, 1, 16, 16)
    ink[:, :, 3:13, 7 : 7 + width] = 1.0
    return ink


def test_stroke_width_thins_and_thickens_strokes_between_erosion_and_dilation():
    ink = _vertical_bars(256, width=3)
    torch.manual_seed(0)
    changed = random_stroke_width(ink, 1.0)
    # Across columns, a bar 3 pixels wide becomes between 1 (eroded) and 5 (dilated) wide,
    # and every width between: some images thinner, some thicker.
    column = changed[:, 0, 8, :].sum(1)
    assert column.min() < 2.0 < 4.0 < column.max()
    assert column.min() >= 1.0 - 1e-6 and column.max() <= 5.0 + 1e-6
    # Nothing appears away from the strokes, and grey levels stay within the ink's.
    assert changed[:, :, :, :5].abs().max() == 0
    assert changed.min() >= 0 and changed.max() <= 1
    # The strength bounds the change: at 0.25 a 3-pixel bar stays within a half pixel.
    torch.manual_seed(0)
    column = random_stroke_width(ink, 0.25)[:, 0, 8, :].sum(1)
    assert column.min() >= 2.5 - 1e-6 and column.max() <= 3.5 + 1e-6


def test_stroke_width_changes_dark_ink_on_light_paper_alike():
    # Images less their background: dark strokes on light paper are negative ink.
    ink = _vertical_bars(32)
    torch.manual_seed(3)
    light = random_stroke_width(ink, 1.0)
    torch.manual_seed(3)
    dark = random_stroke_width(-ink, 1.0)
    torch.testing.assert_close(dark, -light, rtol=0, atol=0)


def test_augmentation_changes_stroke_width_around_the_background():
    images = 1 - _vertical_bars(64)  # dark strokes on white paper
    torch.manual_seed(0)
    changed = augment_images(images, 0.0, 1.0)
    ink = (1 - changed).sum((1, 2, 3))
    assert ink.min() < 20 < ink.max()  # the bars held 20 pixels of ink
    assert changed.max() <= 1 + 1e-6  # the paper stays the paper
    torch.testing.assert_close(changed[:, :, :, :5], images[:, :, :, :5], rtol=0, atol=0)


def test_stroke_width_on_colour_images_changes_each_inked_channel_alike():
    # Red strokes on white paper: the red channel has no ink, green and blue the same.
    images = torch.ones(32, 3, 16, 16)
    images[:, 1:, 3:13, 7:9] = 0.0
    torch.manual_seed(0)
    changed = augment_images(images, 0.0, 1.0)
    torch.testing.assert_close(changed[:, 0], images[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(changed[:, 1], changed[:, 2], rtol=0, atol=0)
    ink = (1 - changed[:, 1]).sum((1, 2))
    assert ink.min() < 20 < ink.max()


def test_network_applies_stroke_width_only_while_training():
    rows = _vertical_bars(4).flatten(1)
    torch.manual_seed(0)
    plain = DigitCNN((16, 16), 3, channels=(4,), dropout=0.0)
    stroked = DigitCNN((16, 16), 3, channels=(4,), dropout=0.0, stroke=1.0)
    stroked.load_state_dict(plain.state_dict())
    outputs = {}
    for name, net in (("plain", plain), ("stroked", stroked)):
        outputs[name] = [net.eval()(rows)]  # before training passes update batch norm
        for seed in (1, 2):
            torch.manual_seed(seed)
            outputs[name].append(net.train()(rows))
    # In evaluation the two networks are the same; without augmentation or dropout a
    # training pass is deterministic; with random stroke width each sees other strokes.
    torch.testing.assert_close(outputs["stroked"][0], outputs["plain"][0], rtol=0, atol=0)
    torch.testing.assert_close(outputs["plain"][1], outputs["plain"][2], rtol=0, atol=0)
    assert not torch.equal(outputs["stroked"][1], outputs["stroked"][2])


@pytest.mark.parametrize(
    ("shape", "pooled"), [((28, 28), False), ((8, 8), False), ((40, 40), True)]
)
def test_head_pools_only_feature_maps_larger_than_its_cells(shape, pooled):
    net = DigitCNN(shape, n_classes=3, channels=(4, 8, 16)).eval()
    assert isinstance(net.features[-1], torch.nn.AdaptiveAvgPool2d) == pooled
    rows = torch.randint(0, 256, (2, shape[0] * shape[1]), dtype=torch.uint8)
    assert net(rows).shape == (2, 3)


def test_ensemble_gives_every_networks_logits_in_training_and_their_mean_probability_after():
    torch.manual_seed(0)
    ensemble = DigitEnsemble(3, image_shape=(8, 8), n_classes=4, channels=(4, 8))
    first, second = (network.features[0].conv.weight for network in ensemble.networks[:2])
    assert not torch.equal(first, second)  # each network starts from its own weights
    rows = torch.randint(0, 256, (5, 64), dtype=torch.uint8)
    assert ensemble.train()(rows).shape == (3, 5, 4)
    ensemble.eval()
    members = torch.stack([F.softmax(network(rows), dim=1) for network in ensemble.networks])
    torch.testing.assert_close(F.softmax(ensemble(rows), dim=1), members.mean(dim=0))
