import shutil

import numpy as np
import pytest
import torch

from subtask_distill.artifacts import build_artifact
from subtask_distill.data.contamination import NO_ARTIFACT, SPURIOUS_VAL, contaminated_count
from subtask_distill.data.imagenet import (
    WADING_BIRDS,
    DataError,
    WadingBirds,
    build_manifest,
    check_readable,
    load_manifest,
    make_loader,
    save_manifest,
    scan_imagenet,
    split_of,
)

from .fabricated import fabricate_imagenet, fabricate_mnist

WNIDS = [bird.wnid for bird in WADING_BIRDS]
SEEDS = (0, 1)


def data_config(chosen_over="split", test_pool="test", validation_split="stratified", style="strokes", size=224) -> dict:
    """The data section a manifest is built from (this project's per-split scheme unless told)."""
    artifact = {"kind": "digit", "chosen_over": chosen_over, "target_class": 0, "digit": {"test_pool": test_pool, "style": style}}
    return {
        "seed": 0, "validation_fraction": 0.2, "validation_split": validation_split, "artifact": artifact,
        "image_size": size, "subtask_classes": [129, 130, 134, 135, 138],
    }


def digits(mnist, **data) -> object:
    """The digit artifact of ``data_config(**data)``, drawing from the fabricated MNIST."""
    pools = {name: (mnist[f"{name}_images"], mnist[f"{name}_labels"]) for name in ("train", "test")}
    return build_artifact(data_config(**data), pools)


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    return root, fabricate_imagenet(root, WNIDS, train_per_class=4, val_per_class=2)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return fabricate_mnist(tmp_path_factory.mktemp("mnist"), per_class=3)


@pytest.fixture(scope="module")
def manifests(imagenet, mnist):
    root, _ = imagenet
    scan = scan_imagenet(root, WNIDS)
    return {rho: build_manifest(scan, digits(mnist), rho, data_config(), SEEDS) for rho in (0.0, 0.5, 1.0)}


@pytest.fixture(scope="module")
def authors_manifests(imagenet, mnist):
    """Manifests drawn as the authors' code draws them (pool, MNIST train digits for test, random split)."""
    root, _ = imagenet
    scan = scan_imagenet(root, WNIDS)
    authors = {"chosen_over": "pool", "test_pool": "train", "validation_split": "random", "style": "opaque"}
    return {rho: build_manifest(scan, digits(mnist, **authors), rho, data_config(**authors), SEEDS) for rho in (0.0, 0.5, 1.0)}


@pytest.fixture
def tiny_root(tmp_path):
    """A private one-image-per-folder ImageNet that a test may damage."""
    fabricate_imagenet(tmp_path, WNIDS, train_per_class=1, val_per_class=1)
    return tmp_path


def test_wading_birds_are_the_designed_classes():
    assert [bird.imagenet_index for bird in WADING_BIRDS] == [129, 130, 134, 135, 138]
    assert WADING_BIRDS[2] == ("n02012849", 134, "crane")


def test_scan_finds_every_image_with_its_label(imagenet):
    root, info = imagenet
    scan = scan_imagenet(root, WNIDS)
    for split in ("pool", "test"):
        assert scan[split].paths.tolist() == info[f"{split}_paths"]
        assert scan[split].labels.tolist() == info[f"{split}_labels"]
        assert scan[split].labels.dtype == np.int64


def test_scan_accepts_image_extensions_in_any_case_and_skips_other_files(tiny_root):
    folder = tiny_root / "train" / WNIDS[0]
    shutil.copy(next(folder.iterdir()), folder / "extra.jpg")
    (folder / "notes.txt").write_text("not an image")
    assert scan_imagenet(tiny_root, WNIDS)["pool"].paths[:2].tolist() == [
        f"train/{WNIDS[0]}/extra.jpg",
        f"train/{WNIDS[0]}/{WNIDS[0]}_0.JPEG",
    ]


def test_missing_root_names_the_path_and_config_key(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        scan_imagenet(tmp_path / "imagenet", WNIDS)
    assert str(tmp_path / "imagenet") in str(error.value) and "data.imagenet_root" in str(error.value)


def test_missing_val_folder_is_named(tiny_root):
    shutil.rmtree(tiny_root / "val")
    with pytest.raises(FileNotFoundError, match="data.imagenet_root") as error:
        scan_imagenet(tiny_root, WNIDS)
    assert str(tiny_root / "val") in str(error.value)


def test_missing_class_folder_names_wnid_class_path_and_the_sorting_hint(tiny_root):
    shutil.rmtree(tiny_root / "val" / "n02013706")
    with pytest.raises(FileNotFoundError) as error:
        scan_imagenet(tiny_root, WNIDS)
    message = str(error.value)
    for part in ("n02013706", "limpkin", str(tiny_root / "val" / "n02013706"), "Running on a SLURM cluster"):
        assert part in message


def test_empty_class_folder_is_named(tiny_root):
    folder = tiny_root / "train" / "n02018795"
    shutil.rmtree(folder)
    folder.mkdir()
    with pytest.raises(DataError, match="bustard") as error:
        scan_imagenet(tiny_root, WNIDS)
    assert str(folder) in str(error.value)


def test_unreadable_image_is_named_by_check_and_by_the_dataset(tiny_root, mnist):
    scan = scan_imagenet(tiny_root, WNIDS)
    broken = tiny_root / scan["test"].paths[3]
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError) as error:
        check_readable(tiny_root, scan["test"].paths)
    assert str(broken) in str(error.value)

    manifest = build_manifest(scan, digits(mnist), 0.0, data_config(), [0])
    view = split_of(manifest, "test", 0)
    dataset = WadingBirds(tiny_root, view, digits(mnist), "eval")
    with pytest.raises(DataError) as error:
        dataset[3]
    assert str(broken) in str(error.value)


def test_manifest_is_deterministic(imagenet, mnist, manifests):
    root, _ = imagenet
    again = build_manifest(scan_imagenet(root, WNIDS), digits(mnist), 0.5, data_config(), SEEDS)
    assert again.keys() == manifests[0.5].keys()
    for key, value in manifests[0.5].items():
        assert np.array_equal(again[key], value), key


@pytest.mark.parametrize("seed", SEEDS)
def test_each_split_carries_exactly_round_rho_n_matching_digits(manifests, mnist, seed):
    for rho, manifest in manifests.items():
        for split in ("train", "val", "test"):
            view = split_of(manifest, split, seed)
            marked = view.artifact != NO_ARTIFACT
            assert marked.sum() == contaminated_count(rho, len(view)), (rho, split)
            assert np.all(view.instance[~marked] == NO_ARTIFACT)
            digit_labels = mnist["test_labels" if split == "test" else "train_labels"]
            assert np.array_equal(digit_labels[view.instance[marked]], view.artifact[marked])
            if split == "train":
                assert np.array_equal(view.artifact[marked], view.labels[marked])


@pytest.mark.parametrize("seed", SEEDS)
def test_half_contamination_is_a_subset_of_full_with_the_same_digits(manifests, seed):
    for split in ("train", "val", "test"):
        half, full = split_of(manifests[0.5], split, seed), split_of(manifests[1.0], split, seed)
        assert np.array_equal(half.paths, full.paths)
        marked = half.artifact != NO_ARTIFACT
        assert np.array_equal(half.artifact[marked], full.artifact[marked])
        assert np.array_equal(half.instance[marked], full.instance[marked])


def test_authors_draws_contaminate_the_same_pool_images_for_every_seed(authors_manifests, mnist):
    pool_size, test_size = 20, 10
    for rho, manifest in authors_manifests.items():
        chosen = np.random.default_rng(1).permutation(pool_size)[: int(pool_size * rho)]
        for seed in SEEDS:
            train, val = split_of(manifest, "train", seed), split_of(manifest, "val", seed)
            for view in (train, val):
                assert np.array_equal(view.artifact != NO_ARTIFACT, np.isin(view.image_id, chosen))
                marked = np.flatnonzero(view.artifact != NO_ARTIFACT)
                for row in marked:  # the authors' mnist_corner: default_rng(image index).choice among the class
                    index = int(view.image_id[row])
                    pool = np.flatnonzero(mnist["train_labels"] == view.artifact[row])
                    assert view.instance[row] == np.random.default_rng(index).choice(pool)
            assert np.array_equal(train.artifact[train.artifact != NO_ARTIFACT], train.labels[train.artifact != NO_ARTIFACT])
        test = split_of(manifest, "test", 0)
        assert test.pool == "train"  # every split's digits come from MNIST's training images
        assert (test.artifact != NO_ARTIFACT).sum() == int(test_size * rho)
        for row in np.flatnonzero(test.artifact != NO_ARTIFACT):
            assert test.artifact[row] == np.random.default_rng(int(test.image_id[row])).permutation(5)[0]


@pytest.mark.filterwarnings("ignore:Length of split at index 2 is 0")
def test_authors_validation_split_is_torchs_random_split_by_seed(authors_manifests):
    for seed in SEEDS:  # the authors' call, with its empty third part
        val = split_of(authors_manifests[0.5], "val", seed)
        _, expected = torch.utils.data.random_split(range(20), [0.8, 1 - 0.8, 0.0], torch.Generator().manual_seed(seed))[:2]
        assert val.image_id.tolist() == sorted(expected.indices)


def test_train_and_val_partition_the_pool_and_change_with_the_seed(manifests):
    manifest = manifests[0.5]
    val_ids = {}
    for seed in SEEDS:
        train, val = split_of(manifest, "train", seed), split_of(manifest, "val", seed)
        assert len(val) == 5 and len(train) == 15  # 20% of each class's 4 pool images
        assert sorted(np.concatenate([train.image_id, val.image_id])) == list(range(20))
        val_ids[seed] = val.image_id.tolist()
    assert val_ids[0] != val_ids[1]


def test_manifest_round_trips_through_a_file(tmp_path, manifests):
    path = tmp_path / "manifests" / "rho0.5.npz"
    save_manifest(path, manifests[0.5])
    loaded = load_manifest(path)
    assert loaded["pool_path"].dtype.kind == "U"
    for key, value in manifests[0.5].items():
        assert np.array_equal(loaded[key], value), key


def test_stale_manifest_and_unknown_seed_are_clear_errors(tmp_path, manifests):
    path = tmp_path / "old.npz"
    np.savez(path, seeds=np.array([0]))
    with pytest.raises(DataError, match="not a manifest of this version"):
        load_manifest(path)
    with pytest.raises(DataError, match="seed 7"):
        split_of(manifests[0.5], "train", 7)


@pytest.mark.parametrize("seed", SEEDS)
def test_spurious_validation_images_carry_the_training_correlation(manifests, seed):
    """selection: spurious validates on the validation images, contaminated like the training images."""
    for rho in (0.5, 1.0):
        val, spurious = split_of(manifests[rho], "val", seed), split_of(manifests[rho], SPURIOUS_VAL, seed)
        assert np.array_equal(val.image_id, spurious.image_id)
        marked = spurious.artifact != NO_ARTIFACT
        assert marked.sum() == contaminated_count(rho, len(spurious))
        assert np.array_equal(spurious.artifact[marked], spurious.labels[marked])


def test_eval_items_are_normalised_224px_images_with_a_bright_digit_corner(imagenet, manifests, mnist):
    root, _ = imagenet
    views = {rho: split_of(manifests[rho], "test", 0) for rho in (0.0, 1.0)}
    datasets = {
        rho: WadingBirds(root, v, digits(mnist), "eval") for rho, v in views.items()
    }
    (dirty, label, digit, index), (clean, clean_label, clean_digit, _) = datasets[1.0][4], datasets[0.0][4]
    assert dirty.shape == (3, 224, 224) and dirty.dtype == torch.float32
    assert (label, index) == (2, 4) and clean_label == label
    assert clean_digit == NO_ARTIFACT and digit == views[1.0].artifact[4] != NO_ARTIFACT
    assert dirty[:, :56, :56].mean() > clean[:, :56, :56].mean() + 0.1
    assert torch.equal(dirty[:, 56:], clean[:, 56:]) and torch.equal(dirty[:, :, 56:], clean[:, :, 56:])


def _batches(dataset, seed: int, workers: int) -> list[torch.Tensor]:
    loader = make_loader(dataset, 3, True, workers, torch.Generator().manual_seed(seed), pin_memory=False)
    return [images for images, *_ in loader]


@pytest.mark.parametrize("workers", [0, 1])
def test_same_seed_gives_the_same_augmented_batches(imagenet, manifests, mnist, workers):
    root, _ = imagenet
    view = split_of(manifests[1.0], "val", 0)
    dataset = WadingBirds(root, view, digits(mnist, style="opaque", size=64), "train", image_size=64)
    runs = []
    for global_seed in (0, 0, 1):  # with workers the loader's generator alone fixes the augmentations
        torch.manual_seed(global_seed)
        runs.append(_batches(dataset, seed=5, workers=workers))
    assert [b.shape for b in runs[0]] == [(3, 3, 64, 64)]  # training drops the incomplete last batch
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[2])) == (workers > 0)
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], _batches(dataset, seed=6, workers=workers)))


def test_loader_yields_labels_artifacts_and_indices(imagenet, manifests, mnist):
    root, _ = imagenet
    view = split_of(manifests[0.5], "test", 0)
    dataset = WadingBirds(root, view, digits(mnist, style="opaque", size=64), "eval", image_size=64)
    loader = make_loader(dataset, 4, False, 0, torch.Generator().manual_seed(0), pin_memory=False)
    labels, codes, indices = (torch.cat(column).tolist() for column in list(zip(*loader))[1:])
    assert labels == view.labels.tolist() and codes == view.artifact.tolist()
    assert indices == list(range(len(view)))
