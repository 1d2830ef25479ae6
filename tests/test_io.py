import numpy as np
import pytest

from subtask_distill.io import atomic_path, load_arrays, read_json, save_arrays, write_json


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("preempted")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_a_failed_rewrite_keeps_the_previous_file(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"acc": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise RuntimeError
    assert read_json(target) == {"acc": 1}


def test_arrays_round_trip(tmp_path):
    arrays = {"x": np.arange(6, dtype=np.uint8).reshape(2, 3), "y": np.array([-1, 3])}
    save_arrays(tmp_path / "a.npz", arrays)
    back = load_arrays(tmp_path / "a.npz")
    assert set(back) == {"x", "y"} and all(np.array_equal(arrays[k], back[k]) for k in arrays)


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    write_json(tmp_path / "m.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o666 & ~mask
