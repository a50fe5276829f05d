"""Offline training of the LLM scheduler: each iteration draws `steps_per_iter` windows from the pool (with
replacement, seeded), in mini-batches; the loss is the negative log-likelihood of the chosen stage plus that of
the number of executors, per decision. AdamW with linear warm-up, gradient accumulation, clipping once per
optimizer step, a resumable checkpoint after every iteration and model selection on validation seeds."""
import csv
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm import tqdm

from common.files import atomic_write_text

from .checkpoint import optimizer_state, restore_optimizer, save_policy
from .dataset import WindowDataset, collate_windows
from .rl_policy import SchedulingPolicy

GRAD_CLIP = 0.25
LOG_COLUMNS = ["iteration", "optimizer_steps", "train_loss", "lr", "valid_avg_jct_s", "seconds"]


@dataclass
class TrainConfig:
    num_iters: int
    steps_per_iter: int  # windows per iteration
    batch_size: int
    grad_accum_steps: int
    lr: float
    weight_decay: float
    warmup_steps: int | None  # None: 5% of all optimizer steps
    eval_per_iter: int
    seed: int


def window_loss(model: SchedulingPolicy, batch: dict) -> torch.Tensor:
    stage, executors, decisions = model(batch["graphs"], batch["window_lengths"], batch["stage_choice"],
                                        batch["job_choice"], batch["exec_choice"], batch["returns"], batch["timesteps"])
    return -(stage + executors) / decisions


class Trainer:
    def __init__(self, model: SchedulingPolicy, dataset: WindowDataset, config: TrainConfig, settings: dict,
                 model_dir: Path, evaluate: Callable[[SchedulingPolicy], float]):
        self.model, self.dataset, self.config, self.settings = model, dataset, config, settings
        self.model_dir, self.evaluate = Path(model_dir), evaluate
        self.generator = torch.Generator().manual_seed(config.seed)  # which windows each iteration draws
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.lr, weight_decay=config.weight_decay)
        batches = math.ceil(config.steps_per_iter / config.batch_size)
        total_steps = math.ceil(batches / config.grad_accum_steps) * config.num_iters
        self.warmup_steps = config.warmup_steps or max(1, total_steps // 20)
        if self.warmup_steps > total_steps:
            print(f"note: --warmup-steps {self.warmup_steps} exceeds the {total_steps} optimizer steps of this run")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min((step + 1) / self.warmup_steps, 1.0))
        self.start_iteration, self.best_score = 0, math.inf
        self.rows: list[list] = []

    def restore(self, checkpoint: Path) -> None:
        scalars = json.loads((checkpoint / "training_state.json").read_text())
        tensors = load_file(checkpoint / "training_state.safetensors")
        restore_optimizer(self.optimizer, tensors, scalars)
        self.scheduler.load_state_dict(scalars["scheduler"])
        self.generator.set_state(tensors["rng.windows"])
        torch.set_rng_state(tensors["rng.torch"])
        self.start_iteration, self.best_score = scalars["iteration"], scalars["best_score"]
        log = self.model_dir / "train_log.csv"
        if log.exists():
            self.rows = [row for row in list(csv.reader(log.open()))[1:] if int(row[0]) <= self.start_iteration]

    def _training_state(self, iteration: int) -> tuple[dict, dict]:
        tensors, scalars = optimizer_state(self.optimizer)
        tensors = {**tensors, "rng.windows": self.generator.get_state(), "rng.torch": torch.get_rng_state()}
        scalars.update(iteration=iteration, best_score=self.best_score, scheduler=self.scheduler.state_dict())
        return tensors, scalars

    def train_iteration(self, iteration: int) -> float:
        self.model.train()
        c = self.config
        windows = torch.randint(len(self.dataset), (c.steps_per_iter,), generator=self.generator).tolist()
        batches = [windows[i:i + c.batch_size] for i in range(0, len(windows), c.batch_size)]
        losses = []
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(batches, desc=f"iteration {iteration + 1}/{c.num_iters}", unit="batch")
        for index, batch_windows in enumerate(bar):
            loss = window_loss(self.model, collate_windows([self.dataset[w] for w in batch_windows]))
            (loss / c.grad_accum_steps).backward()
            if (index + 1) % c.grad_accum_steps == 0 or index + 1 == len(batches):
                torch.nn.utils.clip_grad_norm_(self.parameters, GRAD_CLIP)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
        return sum(losses) / len(losses)

    def fit(self) -> float:
        """Train the remaining iterations; returns the best validation average JCT (s)."""
        for iteration in range(self.start_iteration, self.config.num_iters):
            start = time.perf_counter()
            loss = self.train_iteration(iteration)
            score = None
            if (iteration + 1) % self.config.eval_per_iter == 0 or iteration + 1 == self.config.num_iters:
                score = self.evaluate(self.model)
                if score < self.best_score:
                    self.best_score = score
                    save_policy(self.model, self.settings, self.model_dir / "best_model")
            save_policy(self.model, self.settings, self.model_dir / "checkpoint", self._training_state(iteration + 1))
            self.rows.append([iteration + 1, self.scheduler.last_epoch, f"{loss:.6f}",
                              f"{self.scheduler.get_last_lr()[0]:.3g}", "" if score is None else f"{score:.4f}",
                              f"{time.perf_counter() - start:.1f}"])
            text = io.StringIO()
            csv.writer(text).writerows([LOG_COLUMNS, *self.rows])
            atomic_write_text(self.model_dir / "train_log.csv", text.getvalue())
            valid = "" if score is None else f", validation average JCT {score:.3f} s (best {self.best_score:.3f})"
            print(f"iteration {iteration + 1}: train loss {loss:.4f}{valid}", flush=True)
        return self.best_score
