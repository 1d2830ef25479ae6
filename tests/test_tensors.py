"""Images held as bytes and normalised batch by batch give exactly the all-at-once float tensor."""

import numpy as np
import torch

from subtask_distill.data.tensors import NormalizedImages, images_to_tensor


def test_normalised_batches_equal_the_whole_tensor():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    mean, std = np.array([0.4, 0.5, 0.6]), np.array([0.2, 0.25, 0.3])
    whole = images_to_tensor(images, mean, std)
    lazy = NormalizedImages(images, mean, std)
    index = torch.tensor([7, 0, 3])
    assert len(lazy) == 10
    assert torch.equal(lazy[index], whole[index])
    assert torch.equal(lazy[2:5], whole[2:5])
    assert torch.equal(lazy[4], whole[4:5])
    assert torch.equal(lazy.to(torch.device("cpu"))[:], whole)
