"""Decode once, augment on the device: the crops follow RandomResizedCrop's statistics, half the images are
flipped, the artifact is drawn after the crop where the DataLoader path draws it, and the resampling matches
PIL's within a stated tolerance."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import binomtest, ks_2samp
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from subtask_distill.data.contamination import NO_ARTIFACT
from subtask_distill.data.device_augment import (
    AugmentedBatches,
    DecodedImages,
    crop_and_resize,
    decode_once,
    kept_size,
    sample_crops,
)
from subtask_distill.data.imagenet import IMAGENET_MEAN, IMAGENET_STD, WADING_BIRDS, SplitView

from .fabricated import fabricate_imagenet, fabricate_mnist
from .test_imagenet_data import digits

SAMPLES = 4000


def torchvision_crops(height: int, width: int, count: int) -> np.ndarray:
    torch.manual_seed(0)
    crop = v2.RandomResizedCrop(224)
    image = torch.empty(3, height, width)
    return np.array([[p["top"], p["left"], p["height"], p["width"]] for p in (crop.make_params([image]) for _ in range(count))])


@pytest.mark.parametrize("height, width", [(375, 500), (500, 333), (120, 640)])  # the last often falls back
def test_crop_boxes_follow_random_resized_crops_distribution(height, width):
    ours = sample_crops(torch.tensor([[height, width]] * SAMPLES), torch.Generator().manual_seed(0)).numpy()
    theirs = torchvision_crops(height, width, SAMPLES)
    for boxes in (ours, theirs):
        top, left, h, w = boxes.T
        assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()

    def statistics(boxes):
        top, left, h, w = boxes.T.astype(float)
        return {
            "area share": h * w / (height * width),
            "log aspect": np.log(w / h),
            "top placement": (top + 0.5) / (height - h + 1),
            "left placement": (left + 0.5) / (width - w + 1),
        }

    for name, values in statistics(ours).items():
        result = ks_2samp(values, statistics(theirs)[name])
        assert result.pvalue > 0.001, f"{name}: {result}"


def gradient_image(height=60, width=80) -> torch.Tensor:
    """uint8 3 x H x W, brighter to the right: a flipped crop is brighter on its left."""
    row = torch.linspace(0, 255, width).round().to(torch.uint8)
    return row.expand(3, height, width).clone()


def batches_of(pixels: torch.Tensor, artifact=None, codes=None) -> AugmentedBatches:
    n = len(pixels)
    size = torch.tensor(pixels.shape[2:]).expand(n, 2)
    codes = np.full(n, NO_ARTIFACT) if codes is None else codes
    view = SplitView(np.array([f"{k}.JPEG" for k in range(n)]), np.zeros(n, int), codes, np.arange(n) % 3, np.arange(n))
    return AugmentedBatches(DecodedImages(pixels, size.clone(), size.clone()), view, artifact, 50, 32, torch.device("cpu"))


def as_bytes(x: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


def test_half_the_images_are_flipped():
    batches = batches_of(gradient_image().expand(2000, -1, -1, -1))
    images = batches.augment(torch.arange(2000), torch.Generator().manual_seed(0)).float()
    flipped = images[..., :4].mean(dim=(1, 2, 3)) > images[..., -4:].mean(dim=(1, 2, 3))
    assert binomtest(int(flipped.sum()), 2000, 0.5).pvalue > 0.001


def test_the_artifact_is_drawn_after_the_crop_in_its_region_as_the_dataloader_path_draws_it(tmp_path):
    mnist = fabricate_mnist(tmp_path, per_class=3)
    artifact = digits(mnist, size=32, style="opaque", test_pool="train")
    n = 12
    pixels = gradient_image().expand(n, -1, -1, -1).clone()
    codes = np.arange(n) % 5
    clean = as_bytes(batches_of(pixels).augment(torch.arange(n), torch.Generator().manual_seed(3)))
    marked = as_bytes(batches_of(pixels, artifact, codes).augment(torch.arange(n), torch.Generator().manual_seed(3)))
    for k in range(n):
        expected = artifact.draw(clean[k].permute(1, 2, 0).numpy(), int(codes[k]), k % 3, "train")
        assert np.array_equal(marked[k].permute(1, 2, 0).numpy(), expected)
        outside = np.ones((32, 32), bool)
        outside[artifact.region(k % 3).slices] = False
        assert torch.equal(marked[k][:, outside], clean[k][:, outside]), "nothing but the artifact's region changes"


# The largest mean absolute difference (on 0-255) between roi_align's crops and PIL's resized_crop on the
# fabricated photographs, shrinking and enlarging (docs/performance.md).
PIL_TOLERANCE = 1.5


@pytest.mark.parametrize("box", [(10, 20, 300, 400), (100, 150, 120, 90), (0, 0, 375, 500)])
def test_device_crops_match_pils_resized_crop_within_tolerance(tmp_path, box):
    fabricate_imagenet(tmp_path, [WADING_BIRDS[0].wnid], train_per_class=1, val_per_class=0, size=(375, 500))
    path = next((tmp_path / "train").rglob("*.JPEG"))
    with Image.open(path) as file:
        image = file.convert("RGB")
    expected = TF.pil_to_tensor(TF.resized_crop(image, *box, size=[224, 224])).float()
    pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None]
    ours = crop_and_resize(pixels, torch.tensor([box], dtype=torch.float32), 224)[0].round()
    assert (ours - expected).abs().mean() < PIL_TOLERANCE


def test_decoding_keeps_each_image_at_its_size_up_to_the_longest_side(tmp_path):
    wnid = WADING_BIRDS[0].wnid
    info = fabricate_imagenet(tmp_path, [wnid], train_per_class=2, val_per_class=0, size=(300, 600))
    n = len(info["pool_paths"])
    view = SplitView(np.array(info["pool_paths"]), np.zeros(n, int), np.full(n, NO_ARTIFACT), np.zeros(n, int), np.arange(n))
    decoded = decode_once(tmp_path, view, max_side=400)
    assert decoded.pixels.shape == (n, 3, 400, 400) and decoded.nbytes == n * 3 * 400 * 400
    assert decoded.original.tolist() == [[300, 600]] * n and decoded.kept.tolist() == [list(kept_size(300, 600, 400))] * n == [[200, 400]] * n
    assert decoded.pixels[:, :, 200:].max() == 0, "below the kept image the canvas stays empty"
    with Image.open(tmp_path / info["pool_paths"][0]) as file:
        reference = np.asarray(file.convert("RGB").resize((400, 200), Image.BILINEAR, reducing_gap=None))
    assert np.array_equal(decoded.pixels[0, :, :200, :400].permute(1, 2, 0).numpy(), reference)


def test_batches_follow_the_generator_so_a_resumed_run_sees_the_same_ones():
    batches = batches_of(gradient_image().expand(120, -1, -1, -1).clone())
    first = [(x, i) for x, i in batches(torch.Generator().manual_seed(5))]
    again = [(x, i) for x, i in batches(torch.Generator().manual_seed(5))]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
