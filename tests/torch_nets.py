"""Tiny PyTorch networks for the tests of PyTorch's networks (test_torch_models.py), built here with
random weights: no torchvision, no download. Importable by name, so a whole pickled module of
them unpickles (torch.load of a module needs its class)."""

import torch
from torch import nn


class BasicConv2d(nn.Module):
    """torchvision GoogLeNet's convolution: no bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """torchvision GoogLeNet's Inception block: four branches, the last a ceil-mode max pool."""

    def __init__(self, cin, b1, b2r, b2, b3r, b3, b4):
        super().__init__()
        self.branch1 = BasicConv2d(cin, b1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, b2r, kernel_size=1),
                                     BasicConv2d(b2r, b2, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, b3r, kernel_size=1),
                                     BasicConv2d(b3r, b3, kernel_size=3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(cin, b4, kernel_size=1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class TinyGoogLeNet(nn.Module):
    """torchvision GoogLeNet's module names and layer kinds (stem, ceil-mode pools, Inception
    blocks, classifier), about 1/16 of its width and fewer blocks."""

    def __init__(self):
        super().__init__()
        self.conv1 = BasicConv2d(3, 8, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(8, 8, kernel_size=1)
        self.conv3 = BasicConv2d(8, 12, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(12, 4, 6, 8, 2, 4, 4)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(20, 6, 4, 8, 2, 4, 4)
        self.inception4c = Inception(22, 4, 4, 8, 2, 4, 4)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(20, 10)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3a(x))
        x = self.inception4c(self.inception4a(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TinyMixed(nn.Module):
    """Every layer kind the ONNX converter translates, as PyTorch exports it: an even kernel at
    stride 2 (explicit pads), a batch norm after a pooling (not folded), ReLU6 (Clip), a padded
    ceil-mode max pool, a dilated depthwise convolution with multiplier 2, a grouped one, a
    residual sum, average pools (ceil mode with the padding counted, padding not counted, plain),
    a concatenation; then a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, stride=2, padding=1)
        self.pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.norm = nn.BatchNorm2d(8)
        self.relu6 = nn.ReLU6()
        self.depthwise = nn.Conv2d(8, 16, 3, padding=2, dilation=2, groups=8)
        self.grouped = nn.Conv2d(16, 16, 3, padding=1, groups=4)
        self.avg_counted = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=True)
        self.avg_inside = nn.AvgPool2d(3, 1, padding=1, count_include_pad=False)
        self.squeeze = nn.Conv2d(16, 8, 1)
        self.avg_plain = nn.AvgPool2d(2)
        self.fc = nn.Linear(24, 3)

    def forward(self, x):
        x = self.relu6(self.norm(self.pool(self.stem(x))))
        d = self.depthwise(x)
        x = torch.relu(self.grouped(d) + d)
        x = self.avg_counted(x)
        x = torch.cat([self.avg_inside(x), self.squeeze(x)], 1)
        x = self.avg_plain(x)
        return self.fc(x.mean((2, 3)))


class TinyVGG(nn.Module):
    """torchvision VGG's layout: `features` (convolutions, ReLUs, max pools), an adaptive average
    pooling to a fixed size (which the exporter takes at a fixed input size only), `classifier`."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(16 * 49, 10), nn.ReLU(True), nn.Dropout(), nn.Linear(10, 4))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def randomise(net: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded weights, and batch-norm statistics away from the identity (so folding them shows)."""
    torch.manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0, (2.0 / m.weight[0].numel()) ** 0.5)
            if m.bias is not None:
                nn.init.normal_(m.bias, 0, 0.1)
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return net.eval()
