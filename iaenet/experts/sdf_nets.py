"""PointNet patch encoder, local SDF decoder and the Neural-Pull loss (Shape-Guided's networks, batched).

Shapes: B patches, S points per patch, Q query points per patch, D latent width. All coordinates are in the
normalised patch frame of `sdf_data.normalise_patches` (largest bbox extent 1, centred on the patch mean).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from iaenet.experts.expert3d_config import Expert3DConfig


class PointNetEncoder(nn.Module):
    """PointNet without T-Net: shared per-point layers (BN, ReLU), global max-pool, FC layers (BN, ReLU).

    The last FC also ends in BN + ReLU, as in Shape-Guided, so latents are non-negative.
    """

    def __init__(self, channels: tuple[int, ...], fc: tuple[int, ...], latent_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        width = 3
        for out in channels:
            layers += [nn.Conv1d(width, out, 1), nn.BatchNorm1d(out), nn.ReLU()]
            width = out
        self.point_layers = nn.Sequential(*layers)
        head: list[nn.Module] = []
        for out in (*fc, latent_dim):
            head += [nn.Linear(width, out), nn.BatchNorm1d(out), nn.ReLU()]
            width = out
        self.head = nn.Sequential(*head)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """patches (B, S, 3) float32 -> latents (B, D)."""
        per_point = self.point_layers(patches.transpose(1, 2))  # (B, C, S)
        return self.head(per_point.amax(dim=2))


class SDFDecoder(nn.Module):
    """Local implicit function psi(q, f): signed distance of query q to the surface of the patch with latent f.

    xyz -> W and latent -> W (ReLU each), concat -> W (ReLU), `layers` x weight-normed W -> W (ReLU), W -> 1.
    The latent branch and its half of the concat layer are evaluated once per patch, not once per query: the
    result is the same as concatenating a repeated latent, with half the multiply-adds of that layer.
    """

    def __init__(self, latent_dim: int, width: int, layers: int):
        super().__init__()
        self.xyz_in = nn.Linear(3, width)
        self.latent_in = nn.Linear(latent_dim, width)
        self.joint = nn.Linear(2 * width, width)
        hidden = []
        for _ in range(layers):
            linear = nn.Linear(width, width)
            # Shape-Guided's init for the weight-normed layers: N(0, sqrt(2)/sqrt(W)), zero bias.
            nn.init.normal_(linear.weight, 0.0, math.sqrt(2) / math.sqrt(width))
            nn.init.zeros_(linear.bias)
            hidden.append(weight_norm(linear))
        self.hidden = nn.ModuleList(hidden)
        self.out = nn.Linear(width, 1)
        # SAL geometric init: the initial function is roughly |x| - 0.5, a sphere-like SDF around the origin.
        nn.init.normal_(self.out.weight, 2 * math.sqrt(math.pi) / math.sqrt(width), 1e-6)
        nn.init.constant_(self.out.bias, -0.5)
        self.width = width

    def forward(self, queries: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """queries (B, Q, 3), latents (B, D) -> signed distances (B, Q)."""
        w_xyz, w_lat = self.joint.weight[:, : self.width], self.joint.weight[:, self.width:]
        lat = torch.relu(self.latent_in(latents)) @ w_lat.T + self.joint.bias  # (B, W)
        h = torch.relu(torch.relu(self.xyz_in(queries)) @ w_xyz.T + lat[:, None, :])
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h).squeeze(-1)


class SDFNetwork(nn.Module):
    """Encoder and decoder together, built from an Expert3DConfig."""

    def __init__(self, config: Expert3DConfig):
        super().__init__()
        self.encoder = PointNetEncoder(config.encoder_channels, config.encoder_fc, config.latent_dim)
        self.decoder = SDFDecoder(config.latent_dim, config.decoder_width, config.decoder_layers)


def neural_pull_loss(decoder: SDFDecoder, queries: torch.Tensor, latents: torch.Tensor,
                     targets: torch.Tensor) -> torch.Tensor:
    """Neural-Pull: move each query along the SDF gradient by its SDF value and compare with its nearest
    surface point. g = q - f(q) * grad f / |grad f|; loss = mean |target - g|_2 over all queries.

    queries, targets (B, Q, 3); latents (B, D). Returns a scalar with a graph through the gradient
    (create_graph), so the loss also trains the gradient direction.
    """
    queries = queries.detach().requires_grad_(True)
    sdf = decoder(queries, latents)
    (grad,) = torch.autograd.grad(sdf.sum(), queries, create_graph=True)
    # The clamp only guards against a zero gradient (a flat spot at init); it never binds in practice.
    direction = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    pulled = queries - sdf.unsqueeze(-1) * direction
    return (targets - pulled).norm(dim=-1).mean()
