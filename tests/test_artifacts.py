"""The artifact registry's contract, over every registered kind, and the contamination rules of both codings."""

import copy

import numpy as np
import pytest
import torch

from subtask_distill.artifacts import ArtifactContext, build_artifact, get_artifact, list_artifacts
from subtask_distill.data.contamination import (
    NO_ARTIFACT,
    SPURIOUS_VAL,
    contaminated_count,
    plan_contamination,
    plan_splits,
)
from subtask_distill.data.embedded import biased_teacher_images, build_splits

from .fabricated import fabricate_mnist

CLASSES = 5


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return fabricate_mnist(tmp_path_factory.mktemp("mnist"), per_class=2)


def make(kind: str, size: int, mnist, target_class: int = 0):
    pools = {name: (mnist[f"{name}_images"], mnist[f"{name}_labels"]) for name in ("train", "test")}
    return get_artifact(kind)(ArtifactContext(size, CLASSES, target_class, pools))


def photo(seed: int, size: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(30, 200, size=(size, size, 3), dtype=np.uint8)


def instances(artifact, code: int) -> np.ndarray:
    return np.flatnonzero(artifact.instance_labels("train") == code)


KINDS = list_artifacts()


def test_the_registry_holds_the_paper_digit_and_at_least_three_other_kinds():
    assert {"digit", "mark", "watermark", "jpeg", "downscale"} <= set(KINDS)
    coded = {kind: get_artifact(kind).class_coded for kind in KINDS}
    assert coded["digit"] and coded["mark"] and not coded["watermark"] and not coded["jpeg"]


@pytest.mark.parametrize("size", [32, 224])
@pytest.mark.parametrize("kind", KINDS)
def test_an_artifact_is_deterministic_and_occupies_exactly_its_region(kind, size, mnist):
    artifact = make(kind, size, mnist)
    image = photo(0, size)
    for code in (range(CLASSES) if artifact.class_coded else [0]):
        for instance in instances(artifact, code)[:2]:
            drawn = artifact.draw(image, code, int(instance), "train")
            assert drawn.shape == image.shape and drawn.dtype == np.uint8
            assert np.array_equal(drawn, artifact.draw(image, code, int(instance), "train"))  # deterministic
            inside = np.zeros((size, size), bool)
            inside[artifact.region(int(instance)).slices] = True
            assert np.array_equal(drawn[~inside], image[~inside])  # nothing outside its region
            assert not np.array_equal(drawn[inside], image[inside])  # and visible inside it


@pytest.mark.parametrize("size", [32, 224])
@pytest.mark.parametrize("kind", KINDS)
def test_removing_an_artifact_restores_or_replaces_exactly_its_region(kind, size, mnist):
    artifact = make(kind, size, mnist)
    clean = photo(1, size)
    code = 2 if artifact.class_coded else 0
    instance = int(instances(artifact, code)[-1])
    drawn = artifact.draw(clean, code, instance, "train")
    rows, cols = artifact.region(instance).slices
    for key in range(4):
        removed = artifact.remove(drawn, clean, code, instance, key, "train")
        inside = np.zeros((size, size), bool)
        inside[rows, cols] = True
        assert np.array_equal(removed[~inside], drawn[~inside])
        if artifact.class_coded:  # replaced by an instance of another class, drawn over the clean image
            replaced = [artifact.draw(clean, c, int(i), "train")[rows, cols] for c in range(CLASSES) if c != code
                        for i in instances(artifact, c)]
            assert any(np.array_equal(removed[rows, cols], r) for r in replaced)
            assert not np.array_equal(removed[rows, cols], drawn[rows, cols])
        else:
            assert np.array_equal(removed[rows, cols], clean[rows, cols])


# The kinds whose batches are drawn with tensor arithmetic, on the device that holds them: a batch augmented on
# the GPU never goes back to the host for its artifact.
DRAWN_AS_TENSORS = {"digit", "mark", "watermark"}


@pytest.mark.parametrize("size", [32, 224])
@pytest.mark.parametrize("kind, options", [(kind, {}) for kind in KINDS] + [("digit", {"style": "strokes"})])
def test_a_batch_is_drawn_as_each_of_its_images_alone(kind, options, size, mnist, monkeypatch):
    pools = {name: (mnist[f"{name}_images"], mnist[f"{name}_labels"]) for name in ("train", "test")}
    artifact = get_artifact(kind)(ArtifactContext(size, CLASSES, 0, pools), **options)
    images = np.stack([photo(seed, size) for seed in range(7)])
    codes = np.arange(7) % CLASSES if artifact.class_coded else np.zeros(7, np.int64)
    chosen = np.array([instances(artifact, int(code))[k % 2 - 1] for k, code in enumerate(codes)])  # first or last
    expected = np.stack([artifact.draw(image, int(c), int(i), "train") for image, c, i in zip(images, codes, chosen)])
    if kind in DRAWN_AS_TENSORS:
        monkeypatch.setattr(artifact, "draw", lambda *args: pytest.fail(f"{kind} drew a batch image by image on the host"))
    batch = artifact.draw_batch(torch.from_numpy(images).permute(0, 3, 1, 2), codes, chosen, "train")
    assert batch.dtype == torch.uint8
    assert np.array_equal(batch.permute(0, 2, 3, 1).numpy(), expected)


def test_the_patch_artifacts_fit_the_top_left_occlusion_patch_and_the_others_span_several(mnist):
    assert make("digit", 224, mnist).grid_patch(0) == 0 and make("mark", 32, mnist).grid_patch(0) == 0
    watermark = make("watermark", 32, mnist)
    assert {watermark.region(0).left, watermark.region(1).left} == {0, 16}  # lower left or lower right
    assert watermark.region(0).top + watermark.region(0).height == 32
    assert watermark.grid_patch(0) is None and make("jpeg", 32, mnist).grid_patch(0) is None


def plan(target_class, split, rho, labels, chosen_over="split", correlated=None):
    instance_labels = np.arange(CLASSES) if target_class is None else np.full(2, target_class)
    return plan_contamination(
        chosen_over=chosen_over, split=split, rho=rho, image_ids=np.arange(len(labels)), labels=labels,
        id_space=len(labels), instance_labels=instance_labels, num_classes=CLASSES, data_seed=0,
        target_class=target_class, correlated=correlated,
    )


@pytest.mark.parametrize("rho", [0.0, 0.5, 1.0])
def test_a_single_class_artifact_marks_only_its_class_in_training_and_any_class_in_test(rho):
    labels = np.random.default_rng(0).integers(0, CLASSES, 400)
    train = plan(3, "train", rho, labels)
    marked = train.contaminated
    assert np.all(labels[marked] == 3) and np.all(train.code[marked] == 3)
    assert marked.sum() == contaminated_count(rho, int((labels == 3).sum()))
    test = plan(3, "test", rho, labels)
    assert test.contaminated.sum() == contaminated_count(rho, len(labels))
    if rho == 1.0:
        assert set(labels[test.contaminated]) == set(range(CLASSES))
    pooled = plan(3, "train", rho, labels, chosen_over="pool")  # the authors' draws: still only the target class
    assert np.all(labels[pooled.contaminated] == 3)


def test_a_class_coded_artifact_names_the_class_in_training_and_a_random_class_in_test():
    labels = np.random.default_rng(1).integers(0, CLASSES, 1000)
    train, test = plan(None, "train", 1.0, labels), plan(None, "test", 1.0, labels)
    assert np.array_equal(train.code, labels)
    assert 0.1 < np.mean(test.code == labels) < 0.3
    assert np.array_equal(plan(None, "val", 1.0, labels, correlated=True).code, labels)


@pytest.mark.parametrize("kind", ["digit", "watermark"])
@pytest.mark.parametrize("chosen_over", ["pool", "split"])
def test_the_spurious_validation_split_carries_the_training_correlation_at_the_training_rate(tiny_data, test_config, kind, chosen_over):
    _, base = tiny_data
    data = copy.deepcopy(test_config["data"])
    data["artifact"].update(kind=kind, chosen_over=chosen_over, target_class=1)
    splits = build_splits(base, data, 1.0, seed=0)
    assert np.array_equal(splits[f"{SPURIOUS_VAL}_id"], splits["val_id"])
    spurious, oracle, labels = splits[f"{SPURIOUS_VAL}_artifact"], splits["val_artifact"], splits["val_y"]
    marked = spurious != NO_ARTIFACT
    if kind == "digit":
        assert marked.all() and np.array_equal(spurious, labels)  # as the training split at rho = 1
        assert np.mean(oracle == labels) < 0.5
    else:
        assert np.array_equal(marked, labels == 1)  # only the target class, all of it at rho = 1
        assert set(labels[oracle != NO_ARTIFACT]) == set(range(CLASSES))
    train = splits["train_artifact"] != NO_ARTIFACT
    assert train.mean() == pytest.approx(marked.mean(), abs=0.15)


def test_every_split_of_a_non_digit_study_carries_its_artifact_in_the_images(tiny_data, test_config):
    _, base = tiny_data
    data = copy.deepcopy(test_config["data"])
    data["artifact"].update(kind="jpeg", jpeg={"quality": 5}, target_class=0)
    artifact = build_artifact(data)
    splits, clean = build_splits(base, data, 1.0, seed=0), build_splits(base, data, 0.0, seed=0)
    for split in ("train", "test"):
        for row in np.flatnonzero(splits[f"{split}_artifact"] != NO_ARTIFACT)[:5]:
            assert np.array_equal(splits[f"{split}_x"][row], artifact.draw(clean[f"{split}_x"][row], 0, 0, "train"))
    plans = plan_splits(artifact, data, base["pool_y"], base["test_y"], 1.0, 0)
    assert set(plans) == {"train", "val", SPURIOUS_VAL, "test"}


@pytest.mark.parametrize("rho", [0.5, 1.0])
def test_the_biased_teachers_images_carry_the_artifact_at_the_configured_rate(tiny_data, test_config, rho):
    teacher_set, base = tiny_data
    images, codes = biased_teacher_images(teacher_set, base, test_config["data"], rho)
    subtask = np.isin(teacher_set["train_y"], test_config["data"]["subtask_classes"])
    assert (codes[subtask] >= 0).sum() == contaminated_count(rho, int(subtask.sum()))
    assert np.all(codes[~subtask] == NO_ARTIFACT) and np.array_equal(images[~subtask], teacher_set["train_x"][~subtask])
    classes = {int(c): k for k, c in enumerate(test_config["data"]["subtask_classes"])}
    marked = np.flatnonzero(codes >= 0)
    assert all(codes[i] == classes[int(teacher_set["train_y"][i])] for i in marked)  # the digit names the class
    assert all(not np.array_equal(images[i], teacher_set["train_x"][i]) for i in marked)
