import shutil

import numpy as np
import pytest
import torch

from subtask_distill.data.contamination import NO_DIGIT, contaminated_count
from subtask_distill.data.imagenet import (
    WADING_BIRDS,
    DataError,
    WadingBirds,
    build_manifest,
    check_readable,
    load_manifest,
    make_loader,
    paste_digit,
    save_manifest,
    scan_imagenet,
    split_digits,
    split_of,
)

from .fabricated import fabricate_imagenet, fabricate_mnist

WNIDS = [bird.wnid for bird in WADING_BIRDS]
SEEDS = (0, 1)


def data_config(chosen_over="split", test_pool="test", validation_split="stratified", style="strokes") -> dict:
    """The data section a manifest is built from (this project's per-split scheme unless told)."""
    digit = {"chosen_over": chosen_over, "test_pool": test_pool, "style": style}
    return {"seed": 0, "validation_fraction": 0.2, "validation_split": validation_split, "digit": digit}


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
    digit_labels = {"train": mnist["train_labels"], "test": mnist["test_labels"]}
    return {rho: build_manifest(scan, digit_labels, rho, data_config(), SEEDS) for rho in (0.0, 0.5, 1.0)}


@pytest.fixture(scope="module")
def authors_manifests(imagenet, mnist):
    """Manifests drawn as the authors' code draws them (pool, MNIST train digits for test, random split)."""
    root, _ = imagenet
    scan = scan_imagenet(root, WNIDS)
    digit_labels = {"train": mnist["train_labels"], "test": mnist["test_labels"]}
    data = data_config("pool", "train", "random", "opaque")
    return {rho: build_manifest(scan, digit_labels, rho, data, SEEDS) for rho in (0.0, 0.5, 1.0)}


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

    manifest = build_manifest(scan, {"train": mnist["train_labels"], "test": mnist["test_labels"]}, 0.0, data_config(), [0])
    view = split_of(manifest, "test", 0)
    dataset = WadingBirds(tiny_root, view, split_digits(view, mnist, 224, "strokes"), "strokes", "eval")
    with pytest.raises(DataError) as error:
        dataset[3]
    assert str(broken) in str(error.value)


def test_manifest_is_deterministic(imagenet, mnist, manifests):
    root, _ = imagenet
    digit_labels = {"train": mnist["train_labels"], "test": mnist["test_labels"]}
    again = build_manifest(scan_imagenet(root, WNIDS), digit_labels, 0.5, data_config(), SEEDS)
    assert again.keys() == manifests[0.5].keys()
    for key, value in manifests[0.5].items():
        assert np.array_equal(again[key], value), key


@pytest.mark.parametrize("seed", SEEDS)
def test_each_split_carries_exactly_round_rho_n_matching_digits(manifests, mnist, seed):
    for rho, manifest in manifests.items():
        for split in ("train", "val", "test"):
            view = split_of(manifest, split, seed)
            marked = view.digit_class != NO_DIGIT
            assert marked.sum() == contaminated_count(rho, len(view)), (rho, split)
            assert np.all(view.digit_index[~marked] == NO_DIGIT)
            digit_labels = mnist["test_labels" if split == "test" else "train_labels"]
            assert np.array_equal(digit_labels[view.digit_index[marked]], view.digit_class[marked])
            if split == "train":
                assert np.array_equal(view.digit_class[marked], view.labels[marked])


@pytest.mark.parametrize("seed", SEEDS)
def test_half_contamination_is_a_subset_of_full_with_the_same_digits(manifests, seed):
    for split in ("train", "val", "test"):
        half, full = split_of(manifests[0.5], split, seed), split_of(manifests[1.0], split, seed)
        assert np.array_equal(half.paths, full.paths)
        marked = half.digit_class != NO_DIGIT
        assert np.array_equal(half.digit_class[marked], full.digit_class[marked])
        assert np.array_equal(half.digit_index[marked], full.digit_index[marked])


def test_authors_draws_contaminate_the_same_pool_images_for_every_seed(authors_manifests, mnist):
    pool_size, test_size = 20, 10
    for rho, manifest in authors_manifests.items():
        chosen = np.random.default_rng(1).permutation(pool_size)[: int(pool_size * rho)]
        for seed in SEEDS:
            train, val = split_of(manifest, "train", seed), split_of(manifest, "val", seed)
            for view in (train, val):
                assert np.array_equal(view.digit_class != NO_DIGIT, np.isin(view.image_id, chosen))
                marked = np.flatnonzero(view.digit_class != NO_DIGIT)
                for row in marked:  # the authors' mnist_corner: default_rng(image index).choice among the class
                    index = int(view.image_id[row])
                    pool = np.flatnonzero(mnist["train_labels"] == view.digit_class[row])
                    assert view.digit_index[row] == np.random.default_rng(index).choice(pool)
            assert np.array_equal(train.digit_class[train.digit_class != NO_DIGIT], train.labels[train.digit_class != NO_DIGIT])
        test = split_of(manifest, "test", 0)
        assert test.digit_pool == "train"  # every split's digits come from MNIST's training images
        assert (test.digit_class != NO_DIGIT).sum() == int(test_size * rho)
        for row in np.flatnonzero(test.digit_class != NO_DIGIT):
            assert test.digit_class[row] == np.random.default_rng(int(test.image_id[row])).permutation(5)[0]


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
    with pytest.raises(DataError, match="pool_path"):
        load_manifest(path)
    with pytest.raises(DataError, match="seed 7"):
        split_of(manifests[0.5], "train", 7)


def test_paste_digit_draws_only_into_the_top_left_patch():
    digit = torch.zeros(4, 4)
    digit[1, 2] = 1.0
    image = torch.full((3, 16, 16), 10, dtype=torch.uint8)
    strokes = paste_digit(image, digit, "strokes")
    assert strokes[:, 1, 2].tolist() == [255, 255, 255]
    assert (strokes != image).sum() == 3  # white strokes over the photo
    opaque = paste_digit(image, digit, "opaque")
    assert opaque[:, 1, 2].tolist() == [255, 255, 255]
    assert (opaque[:, :4, :4] == 0).sum() == 3 * 15  # the digit's black background replaces the photo
    assert torch.equal(opaque[:, 4:], image[:, 4:]) and torch.equal(opaque[:, :, 4:], image[:, :, 4:])
    with pytest.raises(ValueError, match="expected"):
        paste_digit(image, torch.zeros(5, 5), "opaque")


def test_eval_items_are_normalised_224px_images_with_a_bright_digit_corner(imagenet, manifests, mnist):
    root, _ = imagenet
    views = {rho: split_of(manifests[rho], "test", 0) for rho in (0.0, 1.0)}
    datasets = {
        rho: WadingBirds(root, v, split_digits(v, mnist, 224, "strokes"), "strokes", "eval") for rho, v in views.items()
    }
    (dirty, label, digit, index), (clean, clean_label, clean_digit, _) = datasets[1.0][4], datasets[0.0][4]
    assert dirty.shape == (3, 224, 224) and dirty.dtype == torch.float32
    assert (label, index) == (2, 4) and clean_label == label
    assert clean_digit == NO_DIGIT and digit == views[1.0].digit_class[4] != NO_DIGIT
    assert dirty[:, :56, :56].mean() > clean[:, :56, :56].mean() + 0.1
    assert torch.equal(dirty[:, 56:], clean[:, 56:]) and torch.equal(dirty[:, :, 56:], clean[:, :, 56:])


def _batches(dataset, seed: int, workers: int) -> list[torch.Tensor]:
    loader = make_loader(dataset, 3, True, workers, torch.Generator().manual_seed(seed), pin_memory=False)
    return [images for images, *_ in loader]


@pytest.mark.parametrize("workers", [0, 1])
def test_same_seed_gives_the_same_augmented_batches(imagenet, manifests, mnist, workers):
    root, _ = imagenet
    view = split_of(manifests[1.0], "val", 0)
    dataset = WadingBirds(root, view, split_digits(view, mnist, 64, "opaque"), "opaque", "train", image_size=64)
    runs = []
    for global_seed in (0, 0, 1):  # with workers the loader's generator alone fixes the augmentations
        torch.manual_seed(global_seed)
        runs.append(_batches(dataset, seed=5, workers=workers))
    assert [b.shape for b in runs[0]] == [(3, 3, 64, 64)]  # training drops the incomplete last batch
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[2])) == (workers > 0)
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], _batches(dataset, seed=6, workers=workers)))


def test_loader_yields_labels_digits_and_indices(imagenet, manifests, mnist):
    root, _ = imagenet
    view = split_of(manifests[0.5], "test", 0)
    dataset = WadingBirds(root, view, split_digits(view, mnist, 64, "opaque"), "opaque", "eval", image_size=64)
    loader = make_loader(dataset, 4, False, 0, torch.Generator().manual_seed(0), pin_memory=False)
    labels, digits, indices = (torch.cat(column).tolist() for column in list(zip(*loader))[1:])
    assert labels == view.labels.tolist() and digits == view.digit_class.tolist()
    assert indices == list(range(len(view)))
