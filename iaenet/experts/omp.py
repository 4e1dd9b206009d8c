"""Batched orthogonal matching pursuit in torch (CPU or CUDA).

Each of B signals has its own small dictionary of K atoms (its nearest bank entries), so the whole batch is
solved at once: the Python loop runs over the n atoms to select (3), never over signals.
"""
from __future__ import annotations

import torch


def omp_reconstruct(signals: torch.Tensor, atoms: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """The OMP approximation of each signal from its own atoms.

    signals (B, d), atoms (B, K, d) -> reconstructions (B, d) in the dtype of `signals`.
    """
    codes = omp_codes(signals, atoms, n_atoms)
    return torch.einsum("bk,bkd->bd", codes, atoms.to(codes.dtype)).to(signals.dtype)


def omp_codes(signals: torch.Tensor, atoms: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """Sparse codes with at most `n_atoms` non-zeros, as sklearn `sparse_encode(algorithm='omp',
    n_nonzero_coefs=n_atoms)` computes them for each row separately.

    signals (B, d), atoms (B, K, d) -> codes (B, K) float64. Greedy: pick the atom with the largest
    |correlation| with the residual, then refit all picked atoms by least squares (a small batched solve of
    their Gram system). Like sklearn's Gram-OMP a signal stops early when the best correlation is negligible
    (squared below machine epsilon), when the best atom is already picked, or when the new atom is linearly
    dependent on the picked ones. Computed in float64 whatever the input dtype, so the tiny thresholds mean the
    same thing for float32 latents.
    """
    if signals.ndim != 2 or atoms.ndim != 3 or atoms.shape[0] != signals.shape[0] \
            or atoms.shape[2] != signals.shape[1]:
        raise ValueError(f"omp: expected signals (B, d) and atoms (B, K, d), got {tuple(signals.shape)} "
                         f"and {tuple(atoms.shape)}")
    batch, k = atoms.shape[:2]
    if not 1 <= n_atoms <= k:
        raise ValueError(f"omp: n_atoms must be in 1..{k} (the number of atoms), got {n_atoms}")
    x, dic = signals.to(torch.float64), atoms.to(torch.float64)
    eps = torch.finfo(torch.float64).eps
    gram = dic @ dic.transpose(1, 2)  # (B, K, K)
    cov = (dic @ x[:, :, None]).squeeze(-1)  # (B, K)
    rows = torch.arange(batch, device=x.device)
    picked = torch.zeros((batch, n_atoms), dtype=torch.long, device=x.device)
    valid = torch.zeros((batch, n_atoms), dtype=torch.bool, device=x.device)
    chosen = torch.zeros((batch, k), dtype=torch.bool, device=x.device)
    running = torch.ones(batch, dtype=torch.bool, device=x.device)
    gamma = x.new_zeros((batch, 0))
    alpha = cov
    for step in range(n_atoms):
        lam = alpha.abs().argmax(dim=1)  # (B,)
        best = alpha[rows, lam]
        stop = chosen[rows, lam] | (best * best < eps)
        if step > 0:
            # Schur complement of the new atom against the picked ones: <= eps means linearly dependent.
            g = gram[rows[:, None], lam[:, None], picked[:, :step]] * valid[:, :step]
            prev = _masked_gram(gram, picked[:, :step], valid[:, :step])
            schur = gram[rows, lam, lam] - (g * torch.linalg.solve(prev, g)).sum(dim=1)
            stop |= schur <= eps
        running &= ~stop
        picked[:, step] = torch.where(running, lam, 0)
        valid[:, step] = running
        chosen[rows, lam] |= running
        sel, ok = picked[:, :step + 1], valid[:, :step + 1]
        rhs = torch.gather(cov, 1, sel) * ok
        gamma = torch.linalg.solve(_masked_gram(gram, sel, ok), rhs)  # zero on invalid slots
        alpha = cov - (torch.gather(gram, 2, sel[:, None, :].expand(-1, k, -1)) @ gamma[:, :, None]).squeeze(-1)
    codes = x.new_zeros((batch, k))
    return codes.scatter_add_(1, picked, gamma * valid)


def _masked_gram(gram: torch.Tensor, sel: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Gram matrix of the selected atoms (B, t, t); unused slots become identity rows so the solve stays
    regular and gives them a zero coefficient (their right-hand side is zero)."""
    t = sel.shape[1]
    sub = torch.gather(torch.gather(gram, 1, sel[:, :, None].expand(-1, -1, gram.shape[2])), 2,
                       sel[:, None, :].expand(-1, t, -1))
    mask = ok[:, :, None] & ok[:, None, :]
    eye = torch.eye(t, dtype=gram.dtype, device=gram.device)
    return torch.where(mask, sub, eye * (~ok)[:, :, None])
