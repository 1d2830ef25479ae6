"""Per-model analysis artifacts: penultimate test features and occlusion relevance.

Every model (the teacher, and each student whatever rho it was trained at) is
scored on the same images: the test split of the study's largest rho, with
relevance on its contaminated images, as the paper's Fig. 3 scores its 0% and
100% students alike. The plotting rules read only these files, so figures can
be redrawn without touching a network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..artifacts import Artifact
from ..data.tensors import NormalizedImages, batch_indices, images_to_tensor
from .relevance import occlusion_relevance


def classifier_of(model: nn.Module) -> nn.Module:
    """The final classification layer, whose input is the pooled penultimate feature vector."""
    inner = getattr(model, "model", model)  # the teacher's subtask head wraps the network
    if hasattr(inner, "get_classifier"):  # timm
        classifier = inner.get_classifier()
        # A distilled timm model has two heads on the same features (EfficientFormerV2: head, head_dist).
        return classifier[0] if isinstance(classifier, tuple) else classifier
    for name in ("fc", "heads", "classifier", "head"):
        if isinstance(getattr(inner, name, None), nn.Module):
            return getattr(inner, name)
    raise ValueError(f"cannot find the classifier of {type(inner).__name__}")


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """The input of the classifier (global-average-pooled features) for every image."""
    captured: list[torch.Tensor] = []
    handle = classifier_of(model).register_forward_pre_hook(lambda module, args: captured.append(args[0].flatten(1).float().cpu()))
    try:
        model.eval()
        for index in batch_indices(len(x), batch_size):
            model(x[index].to(device))
    finally:
        handle.remove()
    return torch.cat(captured).numpy()


def analyse(
    model: nn.Module,
    splits: dict[str, np.ndarray],
    clean_test: np.ndarray,
    artifact: Artifact,
    max_images: int | None,
    device: torch.device,
) -> dict[str, Any]:
    """Features of the whole test split; relevance on its contaminated images (all images when none is).

    ``clean_test`` holds the test images without artifacts, indexed by
    ``test_id`` (``data.sources.clean_test_images``). With ``max_images``
    (None: all), that many images get relevance maps, evenly spaced over the
    split (which is ordered by class), so every class is represented; they
    are the same for every model, so their maps can be compared.
    """
    mean, std = splits["channel_mean"], splits["channel_std"]
    model = model.to(device).eval()

    def to_tensor(images: np.ndarray) -> torch.Tensor:
        return images_to_tensor(images, mean, std).to(device)

    test_x = splits["test_x"]
    features = penultimate_features(model, NormalizedImages(test_x, mean, std), device)
    codes = splits["test_artifact"]
    chosen = np.flatnonzero(codes >= 0) if np.any(codes >= 0) else np.arange(len(codes))
    if max_images is not None and len(chosen) > max_images:
        chosen = chosen[np.linspace(0, len(chosen) - 1, max_images).round().astype(int)]
    relevance = occlusion_relevance(
        model,
        images=test_x[chosen],
        clean=clean_test[splits["test_id"][chosen]],
        labels=splits["test_y"][chosen],
        codes=codes[chosen],
        instances=splits["test_instance"][chosen],
        artifact=artifact,
        pool=artifact.pool_of("test"),
        mean_colour=mean,
        to_tensor=to_tensor,
    )
    return {
        "features": features,
        "labels": splits["test_y"],
        "artifacts": codes,
        **relevance,
        "relevance_images": chosen,
    }
