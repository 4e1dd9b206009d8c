from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iaenet.backbones import EfficientNetLiteFeatures, WideResNet50Features, build_backbone

CROSSWORD = Path(__file__).parent / "data" / "crossword_224.png"
CROSSWORD_CLASS = 918  # ImageNet "crossword puzzle, crossword"


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(2)
    return EfficientNetLiteFeatures("lite0")


@pytest.fixture(scope="module")
def wrn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("wrn") / "wide_resnet50_2-95faca4d.pth"
    torch.save(_torchvision_layout_state(), path)
    return path


def _image() -> torch.Tensor:
    grey = np.asarray(Image.open(CROSSWORD), dtype=np.float32) / 255
    return torch.from_numpy(np.repeat(grey[None, None], 3, axis=1))


def test_lite0_classifies_bundled_image(lite0):
    probs = lite0.classify(_image())[0]
    assert int(probs.argmax()) == CROSSWORD_CLASS and float(probs.max()) > 0.9


def test_lite0_random_init_does_not(lite0, tmp_path):
    # the classification above comes from the weights: a re-initialised network is near-uniform
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    path = tmp_path / "random.pth"
    torch.save(EfficientNet.from_name("efficientnet-lite0").state_dict(), path)
    probs = EfficientNetLiteFeatures("lite0", weights=path).classify(_image())[0]
    assert float(probs.max()) < 0.2


def test_lite0_feature_shapes_frozen_and_deterministic(lite0):
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    a, b = lite0(x), lite0(x)
    assert [tuple(f.shape) for f in a] == [(2, 24, 56, 56), (2, 40, 28, 28)]
    assert lite0.channels == (24, 40) and lite0.strides == (4, 8)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not any(p.requires_grad for p in lite0.parameters()) and not lite0.training
    lite0.train()
    assert not lite0.training
    deep = EfficientNetLiteFeatures("lite0", stages=(4, 7))
    assert [f.shape[1:] for f in deep(x)] == [(40, 28, 28), (80, 14, 14)]


@pytest.mark.parametrize("variant, channels", [("lite1", (24, 40)), ("lite2", (24, 48))])
def test_larger_lite_variants_classify_and_give_stride_4_and_8_maps(variant, channels):
    net = build_backbone(f"efficientnet_{variant}")
    probs = net.classify(_image())[0]
    assert int(probs.argmax()) == CROSSWORD_CLASS and float(probs.max()) > 0.5
    maps = net(torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert net.channels == channels and [tuple(m.shape[1:]) for m in maps] == [(channels[0], 56, 56),
                                                                             (channels[1], 28, 28)]
    with pytest.raises(ValueError, match="lite0"):
        EfficientNetLiteFeatures("lite0", stages=(3, 6))  # Lite1/2 stage ends are not Lite0's
    with pytest.raises(ValueError, match="variant"):
        EfficientNetLiteFeatures("lite9")
    with pytest.raises(ValueError, match="stages"):
        build_backbone("wide_resnet50_2", stages=(1, 2))


def test_wide_resnet_architecture_is_torchvision_compatible(tmp_path, wrn_file):
    # torchvision's wide_resnet50_2 has 68,883,240 parameters
    with pytest.raises(FileNotFoundError, match="wide_resnet50_2"):
        WideResNet50Features(weights=tmp_path / "wide_resnet50_2-95faca4d.pth")
    # a file in torchvision's layout (keys and shapes) loads strictly
    wrn = WideResNet50Features(weights=wrn_file)
    assert sum(p.numel() for p in wrn.parameters()) == 68_883_240
    feats = wrn(torch.rand(1, 3, 224, 224))
    assert [tuple(f.shape) for f in feats] == [(1, 256, 56, 56), (1, 512, 28, 28)]
    assert wrn.classify(torch.rand(1, 3, 224, 224)).shape == (1, 1000)


def test_wide_resnet_from_hub_cache(tmp_path, monkeypatch, wrn_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "hub" / "checkpoints")):
        build_backbone("wide_resnet50_2")
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / wrn_file.name).symlink_to(wrn_file)
    assert isinstance(build_backbone("wide_resnet50_2"), WideResNet50Features)


def test_bad_input(lite0, tmp_path):
    with pytest.raises(ValueError, match="images"):
        lite0(torch.rand(1, 1, 224, 224))
    with pytest.raises(ValueError, match="NaN"):
        lite0(torch.full((1, 3, 32, 32), float("nan")))
    with pytest.raises(ValueError, match="stages"):
        EfficientNetLiteFeatures("lite0", stages=(3,))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        EfficientNetLiteFeatures("lite0", weights=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="backbone"):
        build_backbone("vgg16")
    bad = tmp_path / "wrong_keys.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, bad)
    with pytest.raises(RuntimeError, match="Missing key"):
        WideResNet50Features(weights=bad)


def _torchvision_layout_state() -> dict:
    """Keys and shapes of torchvision's wide_resnet50_2 state dict, written out from its published layout."""
    state = {}

    def bn(prefix, c):
        state.update({f"{prefix}.weight": torch.ones(c), f"{prefix}.bias": torch.zeros(c),
                      f"{prefix}.running_mean": torch.zeros(c), f"{prefix}.running_var": torch.ones(c),
                      f"{prefix}.num_batches_tracked": torch.tensor(0)})

    state["conv1.weight"] = torch.randn(64, 3, 7, 7) * 0.05
    bn("bn1", 64)
    inplanes = 64
    for layer, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for b in range(blocks):
            p, width = f"layer{layer}.{b}", planes * 2
            state[f"{p}.conv1.weight"] = torch.randn(width, inplanes, 1, 1) * 0.05
            bn(f"{p}.bn1", width)
            state[f"{p}.conv2.weight"] = torch.randn(width, width, 3, 3) * 0.02
            bn(f"{p}.bn2", width)
            state[f"{p}.conv3.weight"] = torch.randn(planes * 4, width, 1, 1) * 0.05
            bn(f"{p}.bn3", planes * 4)
            if b == 0:
                state[f"{p}.downsample.0.weight"] = torch.randn(planes * 4, inplanes, 1, 1) * 0.05
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    state["fc.weight"] = torch.randn(1000, 2048) * 0.01
    state["fc.bias"] = torch.zeros(1000)
    return state
