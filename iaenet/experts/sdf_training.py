"""SDF pre-training of the PointNet encoder and decoder with the Neural-Pull loss.

Batches of `batch_patches` normalised patches; each patch contributes one query per patch point (one query
set). Adam with the config's learning rate. Training is resumable: a checkpoint holds the network, the Adam
moments, the random generator state, the epoch and the loss log, so a resumed run continues exactly where the
interrupted one stopped.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from iaenet.experts.expert3d_config import Expert3DConfig
from iaenet.experts.sdf_data import draw_queries
from iaenet.experts.sdf_nets import SDFNetwork, neural_pull_loss
from iaenet.tensor_files import load_tensors, save_tensors

CHECKPOINT_KIND = "iaenet.expert3d.sdf_checkpoint"


def train_sdf(network: SDFNetwork, patches: torch.Tensor, sigma: torch.Tensor, config: Expert3DConfig, *,
              progress: bool = True, checkpoint_path: str | Path | None = None,
              resume_from: str | Path | None = None, log_path: str | Path | None = None) -> list[float]:
    """Trains `network` in place on normalised patches; returns the mean loss of every epoch run so far.

    patches (M, S, 3) float32 and sigma (M, S) on the network's device. Each epoch visits the patches in a
    seeded random order in full batches (an incomplete last batch is skipped, as in the reference).
    checkpoint_path: written after every epoch. resume_from: a checkpoint of the same config (the epoch count
    may be larger, to train longer) to continue from.
    log_path: one line per epoch, "epoch mean_loss seconds".
    """
    device = patches.device
    if patches.shape[0] < config.batch_patches:
        raise ValueError(f"patches: {patches.shape[0]} training patches, need at least batch_patches="
                         f"{config.batch_patches}; give more or larger clouds")
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate, betas=(0.9, 0.999))
    generator = torch.Generator(device=device).manual_seed(config.seed)
    losses: list[float] = []
    if resume_from is not None:
        losses = _load_checkpoint(resume_from, network, optimizer, generator, config)
    steps = patches.shape[0] // config.batch_patches
    bar = tqdm(total=config.epochs * steps, initial=len(losses) * steps, disable=not progress,
               desc="SDF training", unit="batch")
    network.train()
    for epoch in range(len(losses), config.epochs):
        start, total = time.perf_counter(), torch.zeros((), device=device)
        order = torch.randperm(patches.shape[0], generator=generator, device=device)
        for step in range(steps):
            batch = order[step * config.batch_patches:(step + 1) * config.batch_patches]
            queries, targets = draw_queries(patches[batch], sigma[batch], config, generator)
            latents = network.encoder(patches[batch])
            loss = neural_pull_loss(network.decoder, queries, latents, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach()
            bar.update(1)
        losses.append(float(total) / steps)
        bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}")
        if log_path is not None:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"{epoch + 1} {losses[-1]:.6f} {time.perf_counter() - start:.2f}\n")
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, network, optimizer, generator, config, losses)
    bar.close()
    network.eval()
    return losses


def _save_checkpoint(path, network, optimizer, generator, config, losses) -> None:
    tensors = {f"net.{k}": v for k, v in network.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        tensors.update({f"adam.{index}.{name}": value for name, value in state.items()})
    tensors["rng"] = generator.get_state()
    save_tensors(path, tensors, CHECKPOINT_KIND,
                 {"config": config.to_json(), "losses": losses, "rng_device": str(generator.device)})


def _load_checkpoint(path, network, optimizer, generator, config) -> list[float]:
    tensors, header = load_tensors(path, CHECKPOINT_KIND)
    saved = Expert3DConfig.from_json(header["config"])
    if saved.replace(epochs=config.epochs) != config:  # only the epoch count may change, to train longer
        raise ValueError(f"{path}: checkpoint was written with another config; resume needs the same one "
                         f"except for epochs (checkpoint: {header['config']})")
    if len(header["losses"]) > config.epochs:
        raise ValueError(f"{path}: checkpoint has already run {len(header['losses'])} epochs, more than "
                         f"epochs={config.epochs}")
    if header.get("rng_device") != str(generator.device):
        raise ValueError(f"{path}: checkpoint was trained on {header.get('rng_device')}, resuming on "
                         f"{generator.device}; its random stream cannot move between device kinds")
    device = next(network.parameters()).device
    network.load_state_dict({k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("net.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("adam."):
            _, index, name = key.split(".", 2)
            # Adam keeps its step counter on the CPU unless it runs fused/capturable.
            state.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    generator.set_state(tensors["rng"])
    return list(header["losses"])
