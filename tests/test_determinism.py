import numpy as np

from subtask_distill.data.embedded import build_splits, synthesize
from subtask_distill.data.textures import render_textures


def test_synthesis_is_deterministic(test_config, tiny_data):
    teacher_set, base = synthesize(test_config["data"])
    for key, value in tiny_data[0].items():
        assert np.array_equal(value, teacher_set[key]), key
    for key, value in tiny_data[1].items():
        assert np.array_equal(value, base[key]), key


def test_data_seed_changes_the_images(test_config, tiny_data):
    other = dict(test_config["data"], seed=1)
    _, base = synthesize(other)
    assert not np.array_equal(base["pool_x"], tiny_data[1]["pool_x"])


def test_same_seed_same_splits_different_seed_different_split(test_config, tiny_data):
    _, base = tiny_data
    a = build_splits(base, test_config["data"], 0.5, seed=0)
    b = build_splits(base, test_config["data"], 0.5, seed=0)
    c = build_splits(base, test_config["data"], 0.5, seed=1)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert not np.array_equal(a["val_id"], c["val_id"])
    assert np.array_equal(a["test_x"], c["test_x"])  # the test set does not depend on the seed


def test_rendering_does_not_depend_on_batch_composition():
    labels = np.arange(10)
    whole = render_textures(labels, seed=3, stream=0)
    again = render_textures(labels, seed=3, stream=0)
    assert np.array_equal(whole, again)
    assert whole.shape == (10, 32, 32, 3) and whole.dtype == np.uint8


def test_rendering_on_several_threads_gives_the_same_images():
    labels = np.arange(600) % 10  # three chunks
    one = render_textures(labels, seed=5, stream=1)
    assert np.array_equal(render_textures(labels, seed=5, stream=1, workers=3), one)
    assert not np.array_equal(render_textures(labels, seed=5, stream=2, workers=3), one)
