"""iaenet: unsupervised surface-anomaly detection on 3D scans (IAENet).

    from iaenet import IAENet, open_dataset
    model = IAENet("fast").fit(open_dataset(root, "cable_gland", "train"))
    prediction = model.predict(points)

Importing the package is cheap: `IAENet`, `open_dataset` and `read_scan` are imported on first use, and the compiled
extension ``iaenet._C`` is loaded by ``iaenet.ops`` when a kernel first runs.
"""

__version__ = "0.1.0"

_LAZY = {"IAENet": "iaenet.model", "IAENetConfig": "iaenet.model", "PRESETS": "iaenet.model",
         "open_dataset": "iaenet.data.datasets", "read_scan": "iaenet.data.io"}
__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'iaenet' has no attribute {name!r}")
