import numpy as np
import pytest
import torch

from subtask_distill.analysis.relevance import (
    DIGIT_PATCH,
    GRID,
    margin,
    occluded_copies,
    occlusion_relevance,
    replacement_digit_class,
)
from subtask_distill.io import save_arrays
from subtask_distill.reporting.figures import digit_share, pearson
from subtask_distill.reporting.summary import group_chosen_runs, relevance_rows

SIZE, PATCH = 32, 8
MEAN = np.array([0.25, 0.5, 0.75])


def patch_sums(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x 32 x 32 -> N x 16: the sum of each 8x8 patch over channels."""
    return x.sum(1).reshape(len(x), GRID, PATCH, GRID, PATCH).sum(dim=(2, 4)).reshape(len(x), -1)


def test_relevance_of_a_linear_model_over_patch_sums_is_each_patch_contribution():
    rng = np.random.default_rng(0)
    weights = torch.from_numpy(rng.normal(size=(2, GRID * GRID)))  # two classes: "the largest other" is the other one
    model = lambda x: patch_sums(x) @ weights.T
    images = rng.integers(0, 256, size=(3, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.array([0, 1, 0])
    to_tensor = lambda imgs: torch.from_numpy(imgs).permute(0, 3, 1, 2).double()
    relevance = occlusion_relevance(
        model, images, clean=images, labels=labels, digit_classes=np.full(3, -1),
        digit_pool=np.zeros((2, 8, 8)), digit_pool_labels=np.array([0, 1]), mean_colour=MEAN, to_tensor=to_tensor,
        style="opaque",
    )
    fill_sum = np.round(MEAN * 255).sum() * PATCH * PATCH
    sums = patch_sums(to_tensor(images)).numpy()
    for i, y in enumerate(labels):
        contribution = (weights[y] - weights[1 - y]).numpy() * (sums[i] - fill_sum)
        assert np.allclose(relevance[i], contribution, rtol=1e-4, atol=1e-2)  # float32 margins


@pytest.mark.parametrize("style", ["opaque", "strokes"])
def test_occluded_copies_fill_one_patch_each_with_the_mean_colour(style):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    clean = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    digit = rng.random((8, 8)).astype(np.float32)
    copies = occluded_copies(image, clean, MEAN, digit, style)
    assert copies.shape == (16, SIZE, SIZE, 3)
    for p in range(16):
        row, col = divmod(p, GRID)
        inside = np.zeros((SIZE, SIZE), bool)
        inside[row * PATCH : (row + 1) * PATCH, col * PATCH : (col + 1) * PATCH] = True
        assert np.array_equal(copies[p][~inside], image[~inside])  # everything else untouched
        if p == DIGIT_PATCH:  # the replacement digit in the data's look: over the clean corner, or replacing it
            alpha = digit[..., None]
            behind = clean[:8, :8] * (1 - alpha) if style == "strokes" else 0.0
            expected = np.round(behind + 255 * alpha).astype(np.uint8)
            assert np.array_equal(copies[p][:8, :8], np.broadcast_to(expected, (8, 8, 3)))
        else:
            assert np.all(copies[p][inside] == np.round(np.tile(MEAN * 255, (PATCH * PATCH, 1))).astype(np.uint8))
    no_digit = occluded_copies(image, clean, MEAN, None, style)
    assert np.all(no_digit[DIGIT_PATCH][:8, :8] == np.round(MEAN * 255).astype(np.uint8))


def test_the_replacement_digit_always_has_another_class():
    for digit in range(5):
        chosen = {replacement_digit_class(digit, key, 5) for key in range(40)}
        assert chosen == set(range(5)) - {digit}


def test_the_digit_patch_gets_a_digit_of_a_different_class():
    """The model sees copy 0 of each image: its corner must hold a pool digit of another class than the image's."""
    pool = np.stack([np.full((8, 8), (c + 1) / 10, dtype=np.float32) for c in range(5)])  # class c: alpha (c+1)/10
    clean = np.zeros((5, SIZE, SIZE, 3), dtype=np.uint8)
    seen = []

    def model(x):
        seen.append(x[1, 0, 0, 0].item())  # copy 0, a corner pixel: 255 * alpha of the pasted digit
        return torch.zeros(len(x), 5)

    to_tensor = lambda imgs: torch.from_numpy(imgs).permute(0, 3, 1, 2).double()
    occlusion_relevance(model, clean, clean, np.arange(5), np.arange(5), pool, np.arange(5), MEAN, to_tensor, "strokes")
    pasted_class = [round(value / 255 * 10) - 1 for value in seen]
    assert all(pasted != digit for pasted, digit in zip(pasted_class, range(5)))


def test_margin_is_true_logit_minus_the_best_other():
    logits = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, 4.0]])
    assert torch.allclose(margin(logits, torch.tensor([2, 0])), torch.tensor([-1.0, 1.0]))


def test_correlation_and_digit_share_on_a_hand_made_example():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    relevance = np.zeros((2, 16))
    relevance[0, 0], relevance[0, 5] = 3.0, -1.0  # 3 / (3 + 1) on the digit patch
    relevance[1, 0], relevance[1, 2] = 1.0, 1.0  # 1 / 2
    assert digit_share(relevance) == pytest.approx((0.75 + 0.5) / 2)


def test_relevance_rows_average_students_over_seeds_at_lambda_star(tmp_path):
    teacher = np.zeros((2, 16))
    teacher[:, 3] = [1.0, 2.0]
    teacher[:, 0] = [0.5, 0.0]
    runs = []
    for seed, scale in ((0, 1.0), (1, 3.0)):  # seed-average = 2 x teacher: correlation 1
        folder = tmp_path / f"seed{seed}"
        save_arrays(folder / "analysis.npz", {"relevance": teacher * scale})
        runs.append({"pair": "p", "rho": "1", "method": "kd", "lambda": "0", "seed": seed, "val_acc": 50.0, "dir": folder})
    chosen = group_chosen_runs(runs)
    (row,) = relevance_rows(chosen, {"p": {"relevance": teacher, "scored_rho": np.array(1.0)}})
    assert (row["rho"], row["scored_rho"], row["lambda"]) == ("1", "1", "0")
    assert row["n_seeds"] == 2 and row["n_points"] == 32
    assert row["correlation"] == pytest.approx(1.0)
    assert row["teacher_digit_share"] == pytest.approx((0.5 / 1.5 + 0.0) / 2)
    assert row["student_digit_share"] == pytest.approx(row["teacher_digit_share"])

    with pytest.raises(ValueError, match="several lambdas"):
        group_chosen_runs(runs + [dict(runs[0], **{"lambda": "5"})])
