"""The paper's architectures: torchvision teachers and the three students.

Builders create random-initialised networks; pretrained weights are loaded
separately by the teacher loader. Names are the registry keys used as
``arch:`` in a config.
"""

from __future__ import annotations

from torch import nn

from .registry import register_model


@register_model("resnet18")
def resnet18(num_classes: int = 1000, **kwargs) -> nn.Module:
    from torchvision.models import resnet18 as build

    return build(weights=None, num_classes=num_classes, **kwargs)


@register_model("wide_resnet101_2")
def wide_resnet101_2(num_classes: int = 1000, **kwargs) -> nn.Module:
    from torchvision.models import wide_resnet101_2 as build

    return build(weights=None, num_classes=num_classes, **kwargs)


@register_model("vit_b_16")
def vit_b_16(num_classes: int = 1000, **kwargs) -> nn.Module:
    from torchvision.models import vit_b_16 as build

    return build(weights=None, num_classes=num_classes, **kwargs)


class ResNetS(nn.Module):
    """torchvision's ResNet topology with custom stage widths (ResNet18-S: 32, 32, 32, 24).

    Module names match torchvision's (conv1, bn1, layer1..layer4, fc), so the
    same layer names tap teacher and student. ``stem_width``: channels of the
    7x7 stem (64, torchvision's, as the authors' code keeps it; layer1's first
    block then has a 1x1 downsample to its width), or None for the first
    stage's width. ``init``: ``torch_default`` keeps PyTorch's default
    initialisation of every module, as the authors' rebuilt modules do;
    ``kaiming`` re-draws the convolutions as torchvision's ResNet does
    (normal, fan-out).
    """

    def __init__(
        self,
        widths=(32, 32, 32, 24),
        blocks=(2, 2, 2, 2),
        num_classes: int = 5,
        stem_width: int | None = 64,
        init: str = "torch_default",
    ):
        super().__init__()
        from torchvision.models.resnet import BasicBlock, conv1x1

        if init not in ("torch_default", "kaiming"):
            raise ValueError(f"init must be torch_default or kaiming, got {init!r}")
        stem = widths[0] if stem_width is None else stem_width
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        c_in = stem
        for index, (width, count, stride) in enumerate(zip(widths, blocks, (1, 2, 2, 2)), start=1):
            downsample = None
            if stride != 1 or c_in != width:
                downsample = nn.Sequential(conv1x1(c_in, width, stride), nn.BatchNorm2d(width))
            layers = [BasicBlock(c_in, width, stride, downsample)]
            layers += [BasicBlock(width, width) for _ in range(count - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
            c_in = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        if init == "kaiming":
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


@register_model("resnet18s")
def resnet18s(
    num_classes: int = 5, widths=(32, 32, 32, 24), stem_width: int | None = 64, init: str = "torch_default"
) -> nn.Module:
    return ResNetS(widths=tuple(widths), num_classes=num_classes, stem_width=stem_width, init=init)


def _timm(name: str, num_classes: int, **kwargs) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)


@register_model("mobilenetv4_conv_small")
def mobilenetv4_conv_small(num_classes: int = 5, **kwargs) -> nn.Module:
    return _timm("mobilenetv4_conv_small", num_classes, **kwargs)


@register_model("efficientformerv2_s0")
def efficientformerv2_s0(num_classes: int = 5, **kwargs) -> nn.Module:
    # timm's default, distillation=True, as the authors built it: two heads on the pooled features, whose
    # logits are averaged (the second head is only trained apart in DeiT-style distilled training).
    return _timm("efficientformerv2_s0", num_classes, **kwargs)
