"""The reference losses, each checked against an independent computation (micrograd-style):
explicit Python loops over every index, hand-worked numbers, and torch.autograd.gradcheck."""

import itertools

import pytest
import torch

from nst_helpers import losses

DOUBLE = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE)


def assert_one_line_error(excinfo):
    message = str(excinfo.value)
    assert message and "\n" not in message


# --- independent reference computations: plain Python loops over every index --------------


def content_loop(weight, current, original):
    total = 0.0
    for index in itertools.product(*(range(size) for size in current.shape)):
        total += (float(current[index]) - float(original[index])) ** 2
    return weight * total


def gram_loop(features, normalize=True):
    n, c, h, w = features.shape
    gram = torch.zeros(n, c, c, dtype=DOUBLE)
    for b in range(n):
        for i in range(c):
            for j in range(c):
                total = 0.0
                for y in range(h):
                    for x in range(w):
                        total += float(features[b, i, y, x]) * float(features[b, j, y, x])
                gram[b, i, j] = total / (c * h * w) if normalize else total
    return gram


def style_loop(feats, layers, targets, weights):
    total = 0.0
    for layer, target, weight in zip(layers, targets, weights):
        gram = gram_loop(feats[layer])
        target = target.expand_as(gram)
        layer_total = 0.0
        for index in itertools.product(*(range(size) for size in gram.shape)):
            layer_total += (float(gram[index]) - float(target[index])) ** 2
        total += weight * layer_total
    return total


def tv_loop(img, weight):
    n, c, h, w = img.shape
    total = 0.0
    for b in range(n):
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    if y + 1 < h:
                        total += (float(img[b, ch, y + 1, x]) - float(img[b, ch, y, x])) ** 2
                    if x + 1 < w:
                        total += (float(img[b, ch, y, x + 1]) - float(img[b, ch, y, x])) ** 2
    return weight * total


# --- against the loops ------------------------------------------------------------------------


def test_content_loss_matches_loop():
    current, original = randn(2, 3, 4, 5, seed=1), randn(2, 3, 4, 5, seed=2)
    value = losses.content_loss(0.7, current, original)
    assert value.dim() == 0
    assert value.item() == pytest.approx(content_loop(0.7, current, original), rel=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_gram_matrix_matches_loop(normalize):
    features = randn(3, 4, 5, 6, seed=3)
    gram = losses.gram_matrix(features, normalize=normalize)
    assert gram.shape == (3, 4, 4)
    torch.testing.assert_close(gram, gram_loop(features, normalize), rtol=1e-12, atol=1e-12)


def test_gram_matrix_is_symmetric_and_scaled_by_chw():
    features = randn(2, 3, 4, 5, seed=4)
    raw = losses.gram_matrix(features, normalize=False)
    torch.testing.assert_close(raw, raw.transpose(1, 2))
    torch.testing.assert_close(losses.gram_matrix(features), raw / (3 * 4 * 5))


def test_style_loss_matches_loop_with_dict_feats():
    feats = {"relu1_1": randn(2, 3, 4, 4, seed=5), "relu2_1": randn(2, 5, 2, 3, seed=6),
             "relu3_1": randn(2, 2, 3, 3, seed=7)}
    layers = ["relu1_1", "relu2_1"]  # relu3_1 is present but not asked for
    targets = [randn(1, 3, 3, seed=8), randn(2, 5, 5, seed=9)]  # a batch of 1 broadcasts
    weights = [0.3, 2.0]
    value = losses.style_loss(feats, layers, targets, weights)
    assert value.item() == pytest.approx(style_loop(feats, layers, targets, weights), rel=1e-12)


def test_style_loss_matches_loop_with_list_feats():
    feats = [randn(1, 2, 3, 3, seed=10), randn(1, 4, 2, 2, seed=11), randn(1, 3, 2, 5, seed=12)]
    layers = [0, 2]
    targets = [randn(1, 2, 2, seed=13), randn(1, 3, 3, seed=14)]
    weights = [1.5, 0.25]
    value = losses.style_loss(feats, layers, targets, weights)
    assert value.item() == pytest.approx(style_loop(feats, layers, targets, weights), rel=1e-12)


def test_tv_loss_matches_loop():
    img = randn(2, 3, 5, 4, seed=15)
    assert losses.tv_loss(img, 0.4).item() == pytest.approx(tv_loop(img, 0.4), rel=1e-12)


# --- hand-worked examples ----------------------------------------------------------------------


def test_tv_loss_by_hand():
    # image [[1, 2],
    #        [4, 8]]
    # vertical:   (4-1)^2 + (8-2)^2 = 9 + 36 = 45
    # horizontal: (2-1)^2 + (8-4)^2 = 1 + 16 = 17
    # total 62, times the weight 0.5 -> 31
    img = torch.tensor([[[[1.0, 2.0], [4.0, 8.0]]]], dtype=DOUBLE)
    assert losses.tv_loss(img, 0.5).item() == pytest.approx(31.0)
    # normalised: divided by the 4 elements -> 7.75
    assert losses.normalized_tv_loss(img, 0.5).item() == pytest.approx(7.75)


def test_gram_matrix_by_hand():
    # features (1, 2, 1, 2): channel 0 = [1, 2], channel 1 = [3, -1]
    # G00 = 1*1 + 2*2 = 5,  G01 = 1*3 + 2*(-1) = 1,  G11 = 3*3 + (-1)*(-1) = 10
    # normalised by C*H*W = 2*1*2 = 4: [[1.25, 0.25], [0.25, 2.5]]
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, -1.0]]]], dtype=DOUBLE)
    torch.testing.assert_close(losses.gram_matrix(features, normalize=False),
                               torch.tensor([[[5.0, 1.0], [1.0, 10.0]]], dtype=DOUBLE))
    torch.testing.assert_close(losses.gram_matrix(features),
                               torch.tensor([[[1.25, 0.25], [0.25, 2.5]]], dtype=DOUBLE))
    # style loss against a zero target, weight 2:
    # 2 * (1.25^2 + 0.25^2 + 0.25^2 + 2.5^2) = 2 * (1.5625 + 0.0625 + 0.0625 + 6.25) = 2 * 7.9375 = 15.875
    value = losses.style_loss({"a": features}, ["a"], [torch.zeros(1, 2, 2, dtype=DOUBLE)], [2.0])
    assert value.item() == pytest.approx(15.875)


def test_content_loss_by_hand():
    # current [1, 2, 3], original [0, 2, 5]: differences 1, 0, -2 -> squares 1 + 0 + 4 = 5; weight 3 -> 15
    current = torch.tensor([[[[1.0, 2.0, 3.0]]]], dtype=DOUBLE)
    original = torch.tensor([[[[0.0, 2.0, 5.0]]]], dtype=DOUBLE)
    assert losses.content_loss(3.0, current, original).item() == pytest.approx(15.0)
    # normalised: divided by sum of original^2 = 0 + 4 + 25 = 29 -> 15 / 29
    assert losses.normalized_content_loss(3.0, current, original).item() == pytest.approx(15.0 / 29.0)


# --- gradients -------------------------------------------------------------------------------


def leaf(*shape, seed):
    return randn(*shape, seed=seed).requires_grad_(True)


def test_gradcheck_content_loss():
    current, original = leaf(2, 2, 3, 3, seed=20), leaf(2, 2, 3, 3, seed=21)
    assert torch.autograd.gradcheck(lambda a, b: losses.content_loss(0.6, a, b), (current, original))


@pytest.mark.parametrize("normalize", [True, False])
def test_gradcheck_gram_matrix(normalize):
    features = leaf(2, 3, 2, 3, seed=22)
    assert torch.autograd.gradcheck(lambda f: losses.gram_matrix(f, normalize=normalize), (features,))


def test_gradcheck_gram_matrix_in_channels_last_and_twice():
    """The hand-written backward pass (one product with g + g^T) in both memory layouts, and differentiated again."""
    features = randn(2, 3, 4, 5, seed=40).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    assert not features.is_contiguous()          # so the channels_last branch is the one checked
    assert torch.autograd.gradcheck(losses.gram_matrix, (features,))
    assert torch.autograd.gradgradcheck(losses.gram_matrix, (features,))
    assert torch.autograd.gradgradcheck(losses.gram_matrix, (leaf(2, 3, 2, 3, seed=41),))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_gradient_is_autograds_and_keeps_the_layout(layout):
    features = torch.randn(2, 8, 6, 7, generator=torch.Generator().manual_seed(42)).contiguous(memory_format=layout)
    upstream = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(43))   # not symmetric
    ours = features.clone(memory_format=layout).requires_grad_(True)
    (losses.gram_matrix(ours) * upstream).sum().backward()
    plain = features.clone().requires_grad_(True)
    flat = plain.reshape(2, 8, 42)
    (torch.bmm(flat, flat.transpose(1, 2)) / (8 * 42) * upstream).sum().backward()
    torch.testing.assert_close(ours.grad, plain.grad, rtol=1e-5, atol=1e-6)
    assert ours.grad.is_contiguous(memory_format=layout)


def test_gram_matrix_under_bf16_autocast_gives_a_float32_gradient():
    features = torch.randn(1, 4, 5, 5, generator=torch.Generator().manual_seed(44)).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = losses.gram_matrix(features)
    gram.float().pow(2).sum().backward()
    expected = features.detach().clone().requires_grad_(True)
    losses.gram_matrix(expected).pow(2).sum().backward()
    assert features.grad.dtype == torch.float32
    torch.testing.assert_close(features.grad, expected.grad, rtol=0.05, atol=1e-3)


def test_gradcheck_style_loss():
    a, b = leaf(2, 3, 3, 3, seed=23), leaf(2, 2, 2, 2, seed=24)
    targets = [randn(1, 3, 3, seed=25), randn(2, 2, 2, seed=26)]
    assert torch.autograd.gradcheck(
        lambda x, y: losses.style_loss({"x": x, "y": y}, ["x", "y"], targets, [0.5, 3.0]), (a, b))


def test_gradcheck_tv_loss():
    assert torch.autograd.gradcheck(lambda img: losses.tv_loss(img, 0.8), (leaf(2, 3, 4, 3, seed=27),))


def test_gradcheck_normalized_content_loss():
    current, original = leaf(1, 2, 3, 3, seed=28), leaf(1, 2, 3, 3, seed=29)
    assert torch.autograd.gradcheck(lambda a, b: losses.normalized_content_loss(2.0, a, b), (current, original))


def test_gradcheck_normalized_tv_loss():
    assert torch.autograd.gradcheck(lambda img: losses.normalized_tv_loss(img, 1.3), (leaf(2, 2, 3, 4, seed=30),))


# --- batch items are independent ---------------------------------------------------------------


def test_gram_of_batch_is_stack_of_item_grams():
    features = randn(4, 3, 5, 2, seed=31)
    batched = losses.gram_matrix(features)
    stacked = torch.cat([losses.gram_matrix(features[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(batched, stacked, rtol=1e-12, atol=1e-12)


def test_changing_one_item_leaves_the_others_gram_alone():
    features = randn(2, 3, 4, 4, seed=32)
    changed = features.clone()
    changed[1] = randn(3, 4, 4, seed=33)
    before, after = losses.gram_matrix(features), losses.gram_matrix(changed)
    assert torch.equal(before[0], after[0])
    assert not torch.allclose(before[1], after[1])


def test_tv_loss_sums_over_the_batch():
    img = randn(3, 2, 4, 4, seed=34)
    parts = sum(losses.tv_loss(img[i:i + 1], 1.0) for i in range(3))
    assert losses.tv_loss(img, 1.0).item() == pytest.approx(parts.item(), rel=1e-12)


# --- the size-normalised variants ----------------------------------------------------------------


def tile(x):
    """Repeat an activation map 2x2 in space: the same picture, four times the positions."""
    return x.repeat(1, 1, 2, 2)


def test_normalized_content_loss_is_unchanged_by_tiling():
    current, original = randn(1, 4, 5, 3, seed=40), randn(1, 4, 5, 3, seed=41)
    small = losses.normalized_content_loss(1.7, current, original)
    large = losses.normalized_content_loss(1.7, tile(current), tile(original))
    assert large.item() == pytest.approx(small.item(), rel=1e-12)
    # the raw sum, by contrast, grows with the number of positions
    raw_ratio = losses.content_loss(1.0, tile(current), tile(original)) / losses.content_loss(1.0, current, original)
    assert raw_ratio.item() == pytest.approx(4.0)


def test_normalized_content_loss_is_weight_for_zero_features():
    original = randn(1, 3, 4, 4, seed=42)
    assert losses.normalized_content_loss(2.5, torch.zeros_like(original), original).item() == pytest.approx(2.5)


def test_normalized_style_weights_make_style_loss_unchanged_by_tiling():
    style = [randn(1, 3, 4, 4, seed=43), randn(1, 5, 2, 2, seed=44)]
    current = [randn(1, 3, 4, 4, seed=45), randn(1, 5, 2, 2, seed=46)]
    targets = [losses.gram_matrix(s) for s in style]
    weights = losses.normalized_style_weights(10.0, targets)
    small = losses.style_loss(current, [0, 1], targets, weights)
    tiled_targets = [losses.gram_matrix(tile(s)) for s in style]
    tiled_weights = losses.normalized_style_weights(10.0, tiled_targets)
    large = losses.style_loss([tile(c) for c in current], [0, 1], tiled_targets, tiled_weights)
    assert large.item() == pytest.approx(small.item(), rel=1e-10)


def smooth_pattern(channels, size, phase):
    """A smooth activation map sampled on a size x size grid over the unit square."""
    coords = (torch.arange(size, dtype=DOUBLE) + 0.5) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    maps = [torch.sin(2 * torch.pi * (k + 1) * x + phase) * torch.cos(2 * torch.pi * y + k) + 0.5 * k
            for k in range(channels)]
    return torch.stack(maps).unsqueeze(0)


def test_normalized_style_loss_of_a_smooth_pattern_barely_depends_on_resolution():
    values = []
    for size in (32, 64):
        style, current = smooth_pattern(3, size, 0.0), smooth_pattern(3, size, 1.0)
        targets = [losses.gram_matrix(style)]
        values.append(losses.style_loss([current], [0], targets, losses.normalized_style_weights(1.0, targets)).item())
    assert values[0] > 0
    assert values[1] == pytest.approx(values[0], rel=0.03)


def test_normalized_style_weights_give_one_per_layer_for_zero_features():
    targets = [losses.gram_matrix(randn(1, c, 3, 3, seed=50 + c)) for c in (2, 4, 8)]
    count = len(targets)
    weights = losses.normalized_style_weights(count, targets)  # style_weight = number of layers
    for target, weight in zip(targets, weights):
        zero = torch.zeros(1, target.shape[1], 3, 3, dtype=DOUBLE)
        assert losses.style_loss([zero], [0], [target], [weight]).item() == pytest.approx(1.0)
    # with style_weight 1, an image of zeros costs 1 in total, whatever the number of layers
    zeros = [torch.zeros(1, t.shape[1], 3, 3, dtype=DOUBLE) for t in targets]
    weights = losses.normalized_style_weights(1.0, targets)
    assert losses.style_loss(zeros, [0, 1, 2], targets, weights).item() == pytest.approx(1.0)


def test_normalized_tv_loss_is_a_mean():
    img = randn(2, 3, 5, 6, seed=60)
    assert losses.normalized_tv_loss(img, 0.9).item() == pytest.approx(tv_loop(img, 0.9) / img.numel(), rel=1e-12)
    # a checkerboard of 0s and 1s: every neighbour differs by 1, so the mean tends to 2 as the image grows
    values = []
    for size in (16, 32):
        board = ((torch.arange(size)[:, None] + torch.arange(size)[None, :]) % 2).to(DOUBLE).expand(1, 3, size, size)
        values.append(losses.normalized_tv_loss(board, 1.0).item())
        assert values[-1] == pytest.approx(2 * (size - 1) / size)
    assert values[1] == pytest.approx(values[0], rel=0.07)


# --- errors: one line, ValueError ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 4, 4), (1, 1, 3, 4, 4), (4,)])
def test_gram_matrix_rejects_wrong_dimensionality(shape):
    with pytest.raises(ValueError, match="N, C, H, W") as excinfo:
        losses.gram_matrix(torch.zeros(shape))
    assert_one_line_error(excinfo)


@pytest.mark.parametrize("shape", [(3, 4, 4), (4, 4)])
def test_tv_loss_rejects_wrong_dimensionality(shape):
    with pytest.raises(ValueError, match="N, C, H, W") as excinfo:
        losses.tv_loss(torch.zeros(shape), 1.0)
    assert_one_line_error(excinfo)


def test_content_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape") as excinfo:
        losses.content_loss(1.0, torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
    assert_one_line_error(excinfo)
    with pytest.raises(ValueError):
        losses.normalized_content_loss(1.0, torch.zeros(1, 4, 3, 3), torch.zeros(1, 2, 3, 3))


@pytest.mark.parametrize("lengths", [(2, 1, 1), (1, 2, 1), (1, 1, 2)])
def test_style_loss_rejects_mismatched_list_lengths(lengths):
    feats = {"a": torch.zeros(1, 2, 3, 3), "b": torch.zeros(1, 2, 3, 3)}
    layers = ["a", "b"][: lengths[0]]
    targets = [torch.zeros(1, 2, 2)] * lengths[1]
    weights = [1.0] * lengths[2]
    with pytest.raises(ValueError, match="same length") as excinfo:
        losses.style_loss(feats, layers, targets, weights)
    assert_one_line_error(excinfo)


def test_style_loss_rejects_no_layers_and_wrong_dimensionality():
    with pytest.raises(ValueError) as excinfo:
        losses.style_loss({}, [], [], [])
    assert_one_line_error(excinfo)
    with pytest.raises(ValueError, match="N, C, H, W"):
        losses.style_loss({"a": torch.zeros(2, 3, 3)}, ["a"], [torch.zeros(1, 2, 2)], [1.0])


def test_style_loss_rejects_targets_of_the_wrong_shape():
    feats = {"a": torch.zeros(1, 4, 3, 3)}
    with pytest.raises(ValueError, match="shape") as excinfo:
        losses.style_loss(feats, ["a"], [torch.zeros(1, 8, 8)], [1.0])  # Gram of another layer
    assert_one_line_error(excinfo)
    with pytest.raises(ValueError, match="shape"):
        losses.style_loss(feats, ["a"], [torch.zeros(3, 4, 4)], [1.0])  # 3 targets for 1 image
