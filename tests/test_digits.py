"""The digit's two looks: the authors' opaque square and white strokes blended into the image."""

import numpy as np
import pytest
from PIL import Image

from subtask_distill.artifacts import ArtifactContext
from subtask_distill.artifacts.digit import Digit, draw_digits, resize_digits

from .fabricated import fabricate_mnist


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return fabricate_mnist(tmp_path_factory.mktemp("mnist"), per_class=1)["train_images"]


def photo(seed: int, size: int = 224) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def authors_mnist_corner(image: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """The authors' mnist_corner on a 224-px image: an RGBA digit resized to 56 px, pasted with itself as mask."""
    canvas = Image.fromarray(image)
    watermark = Image.fromarray(digit).convert("RGBA").resize((56, 56))
    canvas.paste(watermark, (0, 0), mask=watermark)
    return np.asarray(canvas)


@pytest.mark.parametrize("seed", [0, 1])
def test_opaque_digit_is_the_authors_square_whatever_the_photo(digits, seed):
    image = photo(seed)
    pools = {"train": (digits, np.arange(len(digits)) % 10)}
    artifact = Digit(ArtifactContext(image_size=224, num_classes=5, pools=pools), style="opaque")
    drawn = artifact.draw(image, 3 % 5, 3, "train")
    assert np.array_equal(drawn, authors_mnist_corner(image, digits[3]))
    assert np.array_equal(drawn[56:], image[56:]) and np.array_equal(drawn[:, 56:], image[:, 56:])
    corner = drawn[:56, :56]
    assert np.all(corner[..., 0] == corner[..., 1]) and corner.min() == 0 and corner.max() > 200  # grey: black and white


def test_strokes_let_the_photo_show_through_the_digits_background():
    digit = np.zeros((1, 8, 8), np.float32)
    digit[0, 2:6, 3] = 1.0
    corner = photo(0, 8).astype(np.float32)
    drawn = draw_digits(corner, digit[0], "strokes")
    assert np.array_equal(drawn[digit[0] == 0], corner[digit[0] == 0])
    assert np.all(drawn[digit[0] == 1] == 255)
    assert np.all(draw_digits(corner, digit[0], "opaque")[digit[0] == 0] == 0)


@pytest.mark.parametrize("style", ["opaque", "strokes"])
def test_digits_are_resized_to_the_patch_as_intensities(digits, style):
    resized = resize_digits(digits[:2], 56, style)
    assert resized.shape == (2, 56, 56) and resized.dtype == np.float32
    assert resized.min() == 0.0 and 0.95 < resized.max() <= 1.0


def test_an_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown digit style"):
        draw_digits(np.zeros((8, 8, 3)), np.zeros((8, 8)), "glow")
