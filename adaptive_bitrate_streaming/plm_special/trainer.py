"""Offline training of the policy on an experience pool: whole episodes in mini-batches, cross-entropy on
the actions the conventional policies took, AdamW with linear warm-up, gradient accumulation and clipping,
a checkpoint after every epoch (resumable) and model selection on a validation trace set."""
import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from common.files import atomic_write_text

from .checkpoint import optimizer_state, restore_optimizer, save_policy
from .dataset import ExperienceDataset, collate_episodes
from .rl_policy import OfflineRLPolicy

GRAD_CLIP = 0.25
LOG_COLUMNS = ["epoch", "optimizer_steps", "train_loss", "lr", "valid_mean_qoe", "seconds"]


@dataclass
class TrainConfig:
    num_epochs: int
    batch_size: int
    grad_accum_steps: int
    lr: float
    weight_decay: float
    warmup_steps: int | None  # None: 5% of all optimizer steps
    eval_per_epoch: int
    seed: int


def batches_to(batch: dict, device) -> dict:
    return {key: value.to(device) for key, value in batch.items()}


def episode_loss(model: OfflineRLPolicy, batch: dict) -> torch.Tensor:
    logits = model(batch["states"], batch["actions"], batch["returns"], batch["timesteps"], batch["valid"])
    return F.cross_entropy(logits[batch["valid"]], batch["actions"][batch["valid"]])


class Trainer:
    def __init__(self, model: OfflineRLPolicy, dataset: ExperienceDataset, config: TrainConfig, settings: dict,
                 model_dir: Path, evaluate: Callable[[OfflineRLPolicy], float], device):
        self.model, self.config, self.settings = model, config, settings
        self.model_dir, self.evaluate, self.device = Path(model_dir), evaluate, device
        self.generator = torch.Generator().manual_seed(config.seed)  # episode order
        self.loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, collate_fn=collate_episodes,
                                 generator=self.generator)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.lr, weight_decay=config.weight_decay)
        self.steps_per_epoch = math.ceil(len(self.loader) / config.grad_accum_steps)
        total_steps = self.steps_per_epoch * config.num_epochs
        self.warmup_steps = config.warmup_steps or max(1, total_steps // 20)
        if self.warmup_steps > total_steps:
            print(f"note: --warmup-steps {self.warmup_steps} exceeds the {total_steps} optimizer steps of this run; "
                  "the learning rate never reaches --lr")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min((step + 1) / self.warmup_steps, 1.0))
        self.start_epoch, self.best_score = 0, -math.inf

    def restore(self, checkpoint: Path) -> None:
        """Continue from a checkpoint whose weights the model was built from."""
        scalars = json.loads((checkpoint / "training_state.json").read_text())
        tensors = load_file(checkpoint / "training_state.safetensors")
        restore_optimizer(self.optimizer, tensors, scalars)
        self.scheduler.load_state_dict(scalars["scheduler"])
        self.generator.set_state(tensors["rng.episode_order"])
        torch.set_rng_state(tensors["rng.torch"])
        self.start_epoch, self.best_score = scalars["epoch"], scalars["best_score"]

    def _training_state(self, epoch: int) -> tuple[dict, dict]:
        tensors, scalars = optimizer_state(self.optimizer)
        tensors = {**tensors, "rng.episode_order": self.generator.get_state(), "rng.torch": torch.get_rng_state()}
        scalars.update(epoch=epoch, best_score=self.best_score, scheduler=self.scheduler.state_dict())
        return tensors, scalars

    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        losses = []
        accum = self.config.grad_accum_steps
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{self.config.num_epochs}", unit="batch")
        for index, batch in enumerate(bar):
            loss = episode_loss(self.model, batches_to(batch, self.device))
            (loss / accum).backward()
            if (index + 1) % accum == 0 or index + 1 == len(self.loader):
                torch.nn.utils.clip_grad_norm_(self.parameters, GRAD_CLIP)  # once per optimizer step
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
        return sum(losses) / len(losses)

    def _write_log(self, rows: list[list]) -> None:
        text = io.StringIO()
        csv.writer(text).writerows([LOG_COLUMNS, *rows])
        atomic_write_text(self.model_dir / "train_log.csv", text.getvalue())

    def fit(self) -> float:
        """Train the remaining epochs; returns the best validation score (mean QoE)."""
        rows = []
        if self.start_epoch and (self.model_dir / "train_log.csv").exists():
            with open(self.model_dir / "train_log.csv", newline="") as f:
                rows = [row for row in list(csv.reader(f))[1:] if int(row[0]) <= self.start_epoch]
        for epoch in range(self.start_epoch, self.config.num_epochs):
            start = time.perf_counter()
            loss = self.train_epoch(epoch)
            score = None
            if (epoch + 1) % self.config.eval_per_epoch == 0 or epoch + 1 == self.config.num_epochs:
                score = self.evaluate(self.model)
                if score > self.best_score:
                    self.best_score = score
                    save_policy(self.model, self.settings, self.model_dir / "best_model")
            save_policy(self.model, self.settings, self.model_dir / "checkpoint", self._training_state(epoch + 1))
            rows.append([epoch + 1, self.scheduler.last_epoch, f"{loss:.6f}", f"{self.scheduler.get_last_lr()[0]:.3g}",
                         "" if score is None else f"{score:.6f}", f"{time.perf_counter() - start:.1f}"])
            self._write_log(rows)
            valid = "" if score is None else f", validation mean QoE {score:.4f} (best {self.best_score:.4f})"
            print(f"epoch {epoch + 1}: train loss {loss:.4f}{valid}")
        return self.best_score
