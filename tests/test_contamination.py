import copy

import numpy as np
import pytest

from subtask_distill.data.contamination import (
    NO_ARTIFACT,
    contaminated_count,
    plan_contamination,
    validation_split,
)
from subtask_distill.data.embedded import build_splits

RHOS = (0.0, 0.5, 1.0)


def with_digit(data: dict, chosen_over: str | None = None, **options) -> dict:
    """The data section with the digit artifact chosen over ``chosen_over`` and with ``options``."""
    data = copy.deepcopy(data)
    data["artifact"]["digit"] = {**(data["artifact"].get("digit") or {}), **options}
    if chosen_over is not None:
        data["artifact"]["chosen_over"] = chosen_over
    return data


@pytest.fixture(scope="module", params=["pool", "split"])
def splits_by_rho(request, tiny_data, test_config):
    """Splits of seed 0 at each rho, under either way of choosing the contaminated images."""
    _, base = tiny_data
    data = with_digit(test_config["data"], chosen_over=request.param)
    return request.param, base, {rho: build_splits(base, data, rho, seed=0) for rho in RHOS}


@pytest.mark.parametrize("rho", RHOS)
def test_per_split_contamination_marks_exactly_round_rho_n_images_of_each_split(tiny_data, test_config, rho):
    data = with_digit(test_config["data"], chosen_over="split")
    splits = build_splits(tiny_data[1], data, rho, seed=0)
    for split in ("train", "val", "test"):
        digits = splits[f"{split}_artifact"]
        assert (digits != NO_ARTIFACT).sum() == contaminated_count(rho, len(digits))


@pytest.mark.parametrize("rho", RHOS)
def test_pool_contamination_marks_the_same_int_rho_n_pool_images_for_every_seed(tiny_data, test_config, rho):
    """The authors' draw: default_rng(1).permutation(n)[:int(n * rho)] over the pool, before the validation split."""
    base = tiny_data[1]
    data = with_digit(test_config["data"], chosen_over="pool")
    pool_size, test_size = len(base["pool_y"]), len(base["test_y"])
    chosen = np.random.default_rng(1).permutation(pool_size)[: int(pool_size * rho)]
    val_sets = []
    for seed in (0, 1):
        splits = build_splits(base, data, rho, seed=seed)
        marked = np.concatenate([splits[f"{s}_id"][splits[f"{s}_artifact"] != NO_ARTIFACT] for s in ("train", "val")])
        assert sorted(marked) == sorted(chosen)
        assert (splits["test_artifact"] != NO_ARTIFACT).sum() == int(test_size * rho)
        val_sets.append(splits["val_id"].tolist())
    assert val_sets[0] != val_sets[1]  # the validation split still changes with the seed


def test_rounding_is_half_up():
    assert contaminated_count(0.5, 5) == 3
    assert contaminated_count(0.5, 4) == 2
    assert contaminated_count(1.0, 7) == 7


def test_training_digit_equals_class(splits_by_rho):
    _, _, splits = splits_by_rho
    for rho in (0.5, 1.0):
        digits, labels = splits[rho]["train_artifact"], splits[rho]["train_y"]
        marked = digits != NO_ARTIFACT
        assert marked.any() and np.array_equal(digits[marked], labels[marked])


@pytest.mark.parametrize("chosen_over", ["pool", "split"])
def test_test_digits_are_random_over_all_classes(chosen_over):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 1000)
    plan = plan_contamination(
        chosen_over=chosen_over, split="test", rho=1.0, image_ids=np.arange(1000), labels=labels, id_space=1000,
        instance_labels=np.repeat(np.arange(5), 10), num_classes=5, data_seed=0,
    )
    counts = np.bincount(plan.code, minlength=5)
    assert np.all(counts > 150), counts  # uniform: about 200 each
    assert 0.1 < np.mean(plan.code == labels) < 0.3  # matches the class about 1 time in 5


@pytest.mark.parametrize("style", ["opaque", "strokes"])
def test_digit_sits_in_the_top_left_corner_only(tiny_data, test_config, style):
    base = tiny_data[1]
    data = with_digit(test_config["data"], style=style)
    clean, dirty = build_splits(base, data, 0.0, seed=0), build_splits(base, data, 1.0, seed=0)
    # Same images, same order: the only difference is the digit.
    assert np.array_equal(clean["test_id"], dirty["test_id"])
    diff = np.abs(clean["test_x"].astype(int) - dirty["test_x"].astype(int))
    assert diff[:, 8:, :, :].max() == 0 and diff[:, :, 8:, :].max() == 0
    assert diff[:, :8, :8, :].sum(axis=(1, 2, 3)).min() > 0  # every image visibly changed
    digits = base["digits_train"][dirty["test_instance"]]  # test digits from the training digits by default
    corner = dirty["test_x"][:, :8, :8].astype(np.float32)
    if style == "opaque":  # the digit image itself, whatever the image beneath
        assert np.array_equal(corner, np.repeat(np.round(255 * digits)[..., None], 3, axis=-1))
    else:  # white strokes over the image: never darker than it
        assert np.all(corner >= clean["test_x"][:, :8, :8])


def test_no_digit_at_rho_zero(splits_by_rho):
    _, base, splits = splits_by_rho
    for split in ("train", "val", "test"):
        assert np.all(splits[0.0][f"{split}_artifact"] == NO_ARTIFACT)
    assert np.array_equal(splits[0.0]["test_x"], base["test_x"])


def test_contaminated_sets_are_nested_across_rho(splits_by_rho):
    _, _, splits = splits_by_rho
    for split in ("train", "val", "test"):
        half = splits[0.5][f"{split}_artifact"] != NO_ARTIFACT
        full = splits[1.0][f"{split}_artifact"] != NO_ARTIFACT
        assert np.all(full[half])
        assert np.array_equal(splits[0.5][f"{split}_instance"][half], splits[1.0][f"{split}_instance"][half])


@pytest.mark.parametrize("test_pool", ["train", "test"])
def test_test_digits_come_from_the_configured_pool(tiny_data, test_config, test_pool):
    _, base = tiny_data
    splits = build_splits(base, with_digit(test_config["data"], test_pool=test_pool), 1.0, seed=0)
    pasted = splits["test_instance"]
    assert pasted.max() < len(base[f"digits_{test_pool}"])
    assert np.array_equal(base[f"digits_{test_pool}_y"][pasted], splits["test_artifact"])


def test_stratified_validation_split_holds_the_share_of_each_class_and_depends_on_seed():
    labels = np.repeat(np.arange(5), 50)
    train0, val0 = validation_split(labels, 0.2, seed=0, data_seed=0, how="stratified")
    train1, val1 = validation_split(labels, 0.2, seed=1, data_seed=0, how="stratified")
    assert len(val0) == 50 and np.all(np.bincount(labels[val0]) == 10)
    assert set(train0).isdisjoint(val0) and len(train0) + len(val0) == 250
    assert not np.array_equal(val0, val1)
    assert np.array_equal(val0, validation_split(labels, 0.2, seed=0, data_seed=0, how="stratified")[1])


def test_random_validation_split_partitions_the_pool_by_seed():
    labels = np.repeat(np.arange(5), 50)
    train0, val0 = validation_split(labels, 0.2, seed=0, data_seed=0, how="random")
    _, val1 = validation_split(labels, 0.2, seed=1, data_seed=0, how="random")
    # As the authors' shares [0.8, 1 - 0.8]: floor(250 * 0.19999999999999996) = 49 validation images.
    assert len(val0) == 49 and set(train0).isdisjoint(val0) and len(train0) == 201
    assert not np.array_equal(val0, val1)
    assert np.array_equal(val0, validation_split(labels, 0.2, seed=0, data_seed=5, how="random")[1])  # the run seed alone


@pytest.mark.parametrize("chosen_over", ["pool", "split"])
def test_bad_rho_is_rejected(chosen_over):
    with pytest.raises(ValueError, match="rho"):
        plan_contamination(
            chosen_over=chosen_over, split="train", rho=1.5, image_ids=np.arange(3), labels=np.zeros(3, int),
            id_space=3, instance_labels=np.arange(5), num_classes=5, data_seed=0,
        )
