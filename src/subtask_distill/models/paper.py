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
    same layer names tap teacher and student.
    """

    def __init__(self, widths=(32, 32, 32, 24), blocks=(2, 2, 2, 2), num_classes: int = 5):
        super().__init__()
        from torchvision.models.resnet import BasicBlock, conv1x1

        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        c_in = widths[0]
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
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


@register_model("resnet18s")
def resnet18s(num_classes: int = 5, widths=(32, 32, 32, 24), **kwargs) -> nn.Module:
    return ResNetS(widths=tuple(widths), num_classes=num_classes, **kwargs)


def _timm(name: str, num_classes: int, **kwargs) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)


@register_model("mobilenetv4_conv_small")
def mobilenetv4_conv_small(num_classes: int = 5, **kwargs) -> nn.Module:
    return _timm("mobilenetv4_conv_small", num_classes, **kwargs)


@register_model("efficientformerv2_s0")
def efficientformerv2_s0(num_classes: int = 5, **kwargs) -> nn.Module:
    # One classification head: the distillation head only matters for DeiT-style training.
    kwargs.setdefault("distillation", False)
    return _timm("efficientformerv2_s0", num_classes, **kwargs)
