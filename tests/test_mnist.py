import numpy as np
import pytest

from subtask_distill.data.mnist import MNIST_FILES, load_mnist, read_idx, write_idx

from .fabricated import fabricate_mnist


@pytest.mark.parametrize("gz", [True, False])
def test_fabricated_files_read_back_exactly(tmp_path, gz):
    written = fabricate_mnist(tmp_path, per_class=2, gz=gz)
    loaded = load_mnist(tmp_path)
    assert loaded.keys() == written.keys()
    for key in written:
        assert np.array_equal(loaded[key], written[key])
    assert loaded["train_images"].dtype == np.uint8 and loaded["train_images"].shape == (20, 28, 28)
    assert loaded["train_labels"].dtype == np.int64


def test_idx_round_trip_keeps_shape_and_values(tmp_path):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        assert np.array_equal(read_idx(tmp_path / name), array)


def test_torchvision_layout_is_found(tmp_path):
    written = fabricate_mnist(tmp_path / "MNIST" / "raw", per_class=1)
    assert np.array_equal(load_mnist(tmp_path)["test_images"], written["test_images"])


def test_missing_files_name_the_folder_and_the_config_keys(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_mnist(tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message
    assert "train-images-idx3-ubyte" in message
    assert "data.mnist_root" in message and "data.download_mnist: true" in message


def test_download_asks_torchvision_for_both_splits(tmp_path, monkeypatch):
    import torchvision.datasets

    requested = []

    class FakeMNIST:  # writes what torchvision's downloader would, without a network
        def __init__(self, root, train, download):
            requested.append(train)
            fabricate_mnist(tmp_path / "MNIST" / "raw", per_class=1)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    loaded = load_mnist(tmp_path, download=True)
    assert requested == [True, False]
    assert len(loaded["train_labels"]) == 10


def test_truncated_file_is_named(tmp_path):
    fabricate_mnist(tmp_path, per_class=1, gz=False)
    images = tmp_path / MNIST_FILES["train_images"]
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated") as error:
        load_mnist(tmp_path)
    assert str(images) in str(error.value)


def test_wrong_magic_number_is_named(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match="magic number") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_image_and_label_counts_must_match(tmp_path):
    fabricate_mnist(tmp_path, per_class=1, gz=False)
    labels = tmp_path / MNIST_FILES["test_labels"]
    write_idx(labels, np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="3 labels") as error:
        load_mnist(tmp_path)
    assert str(labels) in str(error.value)
