"""Source experts of IAENet: the 3D expert (PointNet-SDF, Shape-Guided) and the 2D expert."""
from iaenet.experts.expert2d import Expert2D, Expert2DConfig, Expert2DScorer
from iaenet.experts.expert3d import Expert3D, Expert3DScores, point_scores_to_grid
from iaenet.experts.expert3d_config import PRESETS, Expert3DConfig

__all__ = ["Expert2D", "Expert2DConfig", "Expert2DScorer", "Expert3D", "Expert3DConfig", "Expert3DScores", "PRESETS",
           "point_scores_to_grid"]
