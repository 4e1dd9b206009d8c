"""iaenet: unsupervised surface-anomaly detection on 3D scans (IAENet).

Importing the package is cheap: the compiled extension ``iaenet._C`` is loaded by
``iaenet.ops`` on first use, so data and metric code work without it.
"""

__version__ = "0.1.0"
