import numpy as np
import pytest
import torch

from subtask_distill.analysis.relevance import GRID, NO_PATCH, margin, occluded_copies, occlusion_relevance
from subtask_distill.artifacts import ArtifactContext, build_artifact, replacement_class
from subtask_distill.artifacts.digit import Digit
from subtask_distill.io import save_arrays
from subtask_distill.reporting.figures import artifact_share, pearson
from subtask_distill.reporting.summary import group_chosen_runs, relevance_rows

SIZE, PATCH = 32, 8
MEAN = np.array([0.25, 0.5, 0.75])
DIGIT_PATCH = 0


def patch_sums(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x 32 x 32 -> N x 16: the sum of each 8x8 patch over channels."""
    return x.sum(1).reshape(len(x), GRID, PATCH, GRID, PATCH).sum(dim=(2, 4)).reshape(len(x), -1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).double()


def linear_model(seed: int = 0):
    """Two classes over patch sums (so "the largest other" logit is the other one)."""
    weights = torch.from_numpy(np.random.default_rng(seed).normal(size=(2, GRID * GRID)))
    return weights, lambda x: patch_sums(x) @ weights.T


def artifact_of(kind: str, **options):
    data = {"image_size": SIZE, "subtask_classes": [0, 1, 2, 3, 4],
            "artifact": {"kind": kind, "chosen_over": "split", "target_class": 0, kind: options}}
    return build_artifact(data)


def test_relevance_of_a_linear_model_over_patch_sums_is_each_patch_contribution():
    rng = np.random.default_rng(0)
    weights, model = linear_model()
    images = rng.integers(0, 256, size=(3, SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.array([0, 1, 0])
    out = occlusion_relevance(
        model, images, clean=images, labels=labels, codes=np.full(3, -1), instances=np.full(3, -1),
        artifact=artifact_of("mark"), pool="train", mean_colour=MEAN, to_tensor=to_tensor,
    )
    fill_sum = np.round(MEAN * 255).sum() * PATCH * PATCH
    sums = patch_sums(to_tensor(images)).numpy()
    for i, y in enumerate(labels):
        contribution = (weights[y] - weights[1 - y]).numpy() * (sums[i] - fill_sum)
        assert np.allclose(out["relevance"][i], contribution, rtol=1e-4, atol=1e-2)  # float32 margins
    assert np.all(np.isnan(out["artifact_relevance"])) and np.all(out["artifact_patch"] == NO_PATCH)


def test_a_whole_image_artifact_is_measured_by_restoring_the_clean_image():
    """JPEG has no patch: its relevance is f(x) - f(clean x), one more forward pass."""
    rng = np.random.default_rng(2)
    weights, model = linear_model(2)
    jpeg = artifact_of("jpeg")
    clean = rng.integers(0, 256, size=(2, SIZE, SIZE, 3), dtype=np.uint8)
    images = np.stack([jpeg.draw(image, 0, 0, "train") for image in clean])
    labels = np.array([0, 1])
    out = occlusion_relevance(model, images, clean, labels, np.zeros(2, int), np.zeros(2, int), jpeg, "train", MEAN, to_tensor)
    for i, y in enumerate(labels):
        expected = float((weights[y] - weights[1 - y]) @ (patch_sums(to_tensor(images[i : i + 1])) - patch_sums(to_tensor(clean[i : i + 1])))[0])
        assert out["artifact_relevance"][i] == pytest.approx(expected, rel=1e-4, abs=1e-2)
    assert np.all(out["artifact_patch"] == NO_PATCH)


def test_occluded_copies_fill_one_patch_each_with_the_mean_colour_and_remove_the_artifact_in_its_patch():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    removed = image.copy()
    removed[:8, :8] = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    copies = occluded_copies(image, MEAN, removed, DIGIT_PATCH)
    assert copies.shape == (16, SIZE, SIZE, 3)
    fill = np.round(MEAN * 255).astype(np.uint8)
    for p in range(16):
        row, col = divmod(p, GRID)
        inside = np.zeros((SIZE, SIZE), bool)
        inside[row * PATCH : (row + 1) * PATCH, col * PATCH : (col + 1) * PATCH] = True
        assert np.array_equal(copies[p][~inside], image[~inside])  # everything else untouched
        if p == DIGIT_PATCH:
            assert np.array_equal(copies[p], removed)
        else:
            assert np.all(copies[p][inside] == fill)
    assert np.all(occluded_copies(image, MEAN, None, NO_PATCH)[DIGIT_PATCH][:8, :8] == fill)


def test_the_replacement_always_has_another_class():
    for code in range(5):
        chosen = {replacement_class(code, key, 5) for key in range(40)}
        assert chosen == set(range(5)) - {code}


def test_the_digit_patch_gets_a_digit_of_a_different_class():
    """The model sees copy 0 of each image: its corner must hold a pool digit of another class than the image's."""
    glyphs = np.stack([np.full((8, 8), (c + 1) / 10, dtype=np.float32) for c in range(5)])  # class c: alpha (c+1)/10
    digit = Digit(ArtifactContext(SIZE, 5, pools={"train": (glyphs, np.arange(5))}), style="strokes")
    clean = np.zeros((5, SIZE, SIZE, 3), dtype=np.uint8)
    images = np.stack([digit.draw(image, c, c, "train") for c, image in enumerate(clean)])
    seen = []

    def model(x):
        seen.append(x[1, 0, 0, 0].item())  # copy 0, a corner pixel: 255 * alpha of the pasted digit
        return torch.zeros(len(x), 5)

    out = occlusion_relevance(model, images, clean, np.arange(5), np.arange(5), np.arange(5), digit, "train", MEAN, to_tensor)
    pasted_class = [round(value / 255 * 10) - 1 for value in seen]
    assert all(pasted != code for pasted, code in zip(pasted_class, range(5)))
    assert np.all(out["artifact_patch"] == DIGIT_PATCH)
    assert np.array_equal(out["artifact_relevance"], out["relevance"][:, DIGIT_PATCH])


def test_margin_is_true_logit_minus_the_best_other():
    logits = torch.tensor([[1.0, 3.0, 2.0], [5.0, 1.0, 4.0]])
    assert torch.allclose(margin(logits, torch.tensor([2, 0])), torch.tensor([-1.0, 1.0]))


def test_correlation_and_artifact_share_on_a_hand_made_example():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    relevance = np.zeros((3, 16))
    relevance[0, 0], relevance[0, 5] = 3.0, -1.0  # the digit's patch: 3 / (3 + 1)
    relevance[1, 0], relevance[1, 2] = 1.0, 1.0  # 1 / 2
    relevance[2, 4] = 9.0  # no artifact: not counted
    digit = artifact_share(relevance, np.array([3.0, 1.0, np.nan]), np.array([0, 0, NO_PATCH]))
    assert digit == pytest.approx((0.75 + 0.5) / 2)
    # An artifact across patches (a watermark) is measured apart: 2 / (2 + 3 + 1).
    assert artifact_share(relevance[:1], np.array([2.0]), np.array([NO_PATCH])) == pytest.approx(2 / 6)


def test_relevance_rows_average_students_over_seeds_at_lambda_star(tmp_path):
    teacher = np.zeros((2, 16))
    teacher[:, 3] = [1.0, 2.0]
    teacher[:, 0] = [0.5, 0.0]
    runs = []
    for seed, scale in ((0, 1.0), (1, 3.0)):  # seed-average = 2 x teacher: correlation 1
        folder = tmp_path / f"seed{seed}"
        save_arrays(folder / "analysis.npz", {"relevance": teacher * scale, "artifact_relevance": teacher[:, 0] * scale})
        runs.append({"pair": "p", "rho": "1", "method": "kd", "lambda": "0", "seed": seed, "val_acc": 50.0, "dir": folder})
    chosen = group_chosen_runs(runs)
    analysis = {"relevance": teacher, "artifact_relevance": teacher[:, 0], "artifact_patch": np.zeros(2, int), "scored_rho": np.array(1.0)}
    (row,) = relevance_rows(chosen, {"p": analysis})
    assert (row["rho"], row["scored_rho"], row["lambda"]) == ("1", "1", "0")
    assert row["n_seeds"] == 2 and row["n_points"] == 32
    assert row["correlation"] == pytest.approx(1.0)
    assert row["teacher_artifact_share"] == pytest.approx((0.5 / 1.5 + 0.0) / 2)
    assert row["student_artifact_share"] == pytest.approx(row["teacher_artifact_share"])

    with pytest.raises(ValueError, match="several lambdas"):
        group_chosen_runs(runs + [dict(runs[0], **{"lambda": "5"})])
