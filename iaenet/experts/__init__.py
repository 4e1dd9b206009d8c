"""The two experts of IAENet: 3D (PointNet + SDF) and 2D (rendering + CNN + FPFH)."""
