"""The embedded study's teacher (a small ResNet) and student (a small CNN).

Both have four stages whose outputs are the layers paired for distillation:
teacher ``layer1..layer4`` (16/32/64/128 channels), student
``stage1..stage4`` (8/16/32/64 channels), at 32/16/8/4 pixels for 32-px input.
"""

from __future__ import annotations

from torch import nn

from .registry import register_model


def conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block (two 3x3 convs and a shortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SmallResNet(nn.Module):
    def __init__(self, widths=(16, 32, 64, 128), num_classes: int = 10):
        super().__init__()
        self.stem = conv_bn_relu(3, widths[0], stride=1)
        strides = (1, 2, 2, 2)
        c_in = widths[0]
        for index, (width, stride) in enumerate(zip(widths, strides), start=1):
            self.add_module(f"layer{index}", BasicBlock(c_in, width, stride))
            c_in = width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward_features(self, x):
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(self.pool(self.forward_features(x)).flatten(1))


class SmallCNN(nn.Module):
    def __init__(self, widths=(8, 16, 32, 64), num_classes: int = 5):
        super().__init__()
        strides = (1, 2, 2, 2)
        c_in = 3
        for index, (width, stride) in enumerate(zip(widths, strides), start=1):
            self.add_module(f"stage{index}", conv_bn_relu(c_in, width, stride))
            c_in = width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward_features(self, x):
        return self.stage4(self.stage3(self.stage2(self.stage1(x))))

    def forward(self, x):
        return self.fc(self.pool(self.forward_features(x)).flatten(1))


@register_model("embedded_resnet")
def embedded_resnet(num_classes: int = 10, **kwargs) -> nn.Module:
    return SmallResNet(num_classes=num_classes, **kwargs)


@register_model("embedded_cnn")
def embedded_cnn(num_classes: int = 5, **kwargs) -> nn.Module:
    return SmallCNN(num_classes=num_classes, **kwargs)
