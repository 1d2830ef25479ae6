import numpy as np
import pytest

from subtask_distill.data.contamination import (
    NO_DIGIT,
    contaminated_count,
    plan_contamination,
    validation_split,
)
from subtask_distill.data.embedded import build_splits


@pytest.fixture(scope="module")
def splits_by_rho(tiny_data, test_config):
    _, base = tiny_data
    return base, {rho: build_splits(base, test_config["data"], rho, seed=0) for rho in (0.0, 0.5, 1.0)}


@pytest.mark.parametrize("rho", [0.0, 0.5, 1.0])
def test_exactly_round_rho_n_images_carry_a_digit(splits_by_rho, rho):
    _, splits = splits_by_rho
    for split in ("train", "val", "test"):
        digits = splits[rho][f"{split}_digit"]
        assert (digits != NO_DIGIT).sum() == contaminated_count(rho, len(digits))


def test_rounding_is_half_up():
    assert contaminated_count(0.5, 5) == 3
    assert contaminated_count(0.5, 4) == 2
    assert contaminated_count(1.0, 7) == 7


def test_training_digit_equals_class(splits_by_rho):
    _, splits = splits_by_rho
    for rho in (0.5, 1.0):
        digits, labels = splits[rho]["train_digit"], splits[rho]["train_y"]
        marked = digits != NO_DIGIT
        assert np.array_equal(digits[marked], labels[marked])


def test_test_digits_are_random_over_all_classes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 1000)
    plan = plan_contamination(
        split="test", rho=1.0, image_ids=np.arange(1000), labels=labels, id_space=1000,
        digit_labels=np.repeat(np.arange(5), 10), num_classes=5, data_seed=0,
    )
    counts = np.bincount(plan.digit_class, minlength=5)
    assert np.all(counts > 150), counts  # uniform: about 200 each
    assert 0.1 < np.mean(plan.digit_class == labels) < 0.3  # matches the class about 1 time in 5


def test_digit_sits_in_the_top_left_corner_only(splits_by_rho):
    base, splits = splits_by_rho
    clean, dirty = splits[0.0], splits[1.0]
    # Same images, same order: the only difference is the pasted digit.
    assert np.array_equal(clean["test_id"], dirty["test_id"])
    diff = np.abs(clean["test_x"].astype(int) - dirty["test_x"].astype(int))
    assert diff[:, 8:, :, :].max() == 0 and diff[:, :, 8:, :].max() == 0
    assert diff[:, :8, :8, :].sum(axis=(1, 2, 3)).min() > 0  # every image got visible strokes


def test_no_digit_at_rho_zero(splits_by_rho):
    base, splits = splits_by_rho
    for split in ("train", "val", "test"):
        assert np.all(splits[0.0][f"{split}_digit"] == NO_DIGIT)
    assert np.array_equal(splits[0.0]["test_x"], base["test_x"])


def test_contaminated_sets_are_nested_across_rho(splits_by_rho):
    _, splits = splits_by_rho
    half = splits[0.5]["train_digit"] != NO_DIGIT
    full = splits[1.0]["train_digit"] != NO_DIGIT
    assert np.all(full[half])
    assert np.array_equal(splits[0.5]["train_digit_index"][half], splits[1.0]["train_digit_index"][half])


def test_test_digits_come_from_the_test_half(tiny_data, test_config):
    _, base = tiny_data
    splits = build_splits(base, test_config["data"], 1.0, seed=0)
    pool = base["digits_test"]
    pasted = splits["test_digit_index"]
    assert pasted.max() < len(pool)
    assert np.array_equal(base["digits_test_y"][pasted], splits["test_digit"])


def test_validation_split_is_stratified_and_depends_on_seed():
    labels = np.repeat(np.arange(5), 50)
    train0, val0 = validation_split(labels, 0.2, seed=0, data_seed=0)
    train1, val1 = validation_split(labels, 0.2, seed=1, data_seed=0)
    assert len(val0) == 50 and np.all(np.bincount(labels[val0]) == 10)
    assert set(train0).isdisjoint(val0) and len(train0) + len(val0) == 250
    assert not np.array_equal(val0, val1)
    assert np.array_equal(val0, validation_split(labels, 0.2, seed=0, data_seed=0)[1])


def test_bad_rho_is_rejected():
    with pytest.raises(ValueError, match="rho"):
        plan_contamination(
            split="train", rho=1.5, image_ids=np.arange(3), labels=np.zeros(3, int), id_space=3,
            digit_labels=np.arange(5), num_classes=5, data_seed=0,
        )
