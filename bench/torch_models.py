"""d2l's ResidualBlock and ResNet-18 in PyTorch, for the benchmarks' PyTorch side."""
from torch import nn
from torch.nn import functional as F


class ResidualBlock(nn.Module):
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(num_channels)
        self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides) if use_1x1conv else None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet18(num_classes=10, in_channels=1):
    def stage(cin, cout, n, first=False):
        return [ResidualBlock(cin, cout, True, 2) if i == 0 and not first else ResidualBlock(cout, cout) for i in range(n)]
    b1 = nn.Sequential(nn.Conv2d(in_channels, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    return nn.Sequential(b1, nn.Sequential(*stage(64, 64, 2, True)), nn.Sequential(*stage(64, 128, 2)),
                         nn.Sequential(*stage(128, 256, 2)), nn.Sequential(*stage(256, 512, 2)),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, num_classes))
