"""Offline training of a return-conditioned policy on an experience pool (network alignment).

Training goes in rounds (ABR: epochs over the pool's episodes; CJS: iterations of windows drawn from the
pool); the task's batch source says what a round holds, drawing from the trainer's generator, and the
policy's `loss(batch)` is the negative log-likelihood of the actions the conventional policies took. AdamW
with linear warm-up, then a constant learning rate (the original's) or a cosine decay to 0 at the last
optimizer step, gradient accumulation, clipping once per optimizer step, optionally an exponential moving
average of the trained weights (`WeightAverage`), a resumable checkpoint after every round (every random
generator training draws from is saved and restored) and model selection on a validation set, never the test
set.
"""
import csv
import io
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from common.errors import InputError
from common.files import atomic_write_text

from .checkpoint import optimizer_state, restore_optimizer, save_policy
from .footprint import duration_text, measured_peaks

GRAD_CLIP = 0.25


class BatchSource(Protocol):
    def __len__(self) -> int:
        """Batches per round."""

    def round(self, generator: torch.Generator) -> Iterable[dict]:
        """The batches of one round, in an order drawn from `generator`."""


@dataclass
class TrainConfig:
    rounds: int
    round_name: str  # "epoch" or "iteration": the progress bar's and train_log.csv's word for a round
    grad_accum_steps: int
    lr: float
    weight_decay: float
    warmup_steps: int | None  # None: 5% of all optimizer steps
    eval_every: int  # rounds between validations (and always after the last)
    seed: int
    lr_schedule: str = "constant"  # after the warm-up: "constant" or "cosine"
    average_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights


@dataclass
class Validation:
    """Model selection: `evaluate(model)` scores the policy on the validation set."""

    evaluate: Callable[[nn.Module], float]
    name: str  # in the progress line, e.g. "mean QoE"
    column: str  # in train_log.csv, e.g. "valid_mean_qoe"
    higher_is_better: bool

    def better(self, score: float, best: float) -> bool:
        return score > best if self.higher_is_better else score < best


def generator_states(generator: torch.Generator) -> tuple[dict, dict]:
    """Every random generator that training may draw from: the trainer's (batch order), torch's (dropout),
    CUDA's when there is one, NumPy's and Python's global ones."""
    tensors = {"rng.batches": generator.get_state(), "rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    name, keys, position, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    python_version, python_state, python_gauss = random.getstate()
    scalars = {"rng.numpy": [name, position, has_gauss, gauss],
               "rng.python": [python_version, list(python_state), python_gauss]}
    return tensors, scalars


def restore_generator_states(generator: torch.Generator, tensors: dict, scalars: dict) -> None:
    generator.set_state(tensors["rng.batches"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    name, position, has_gauss, gauss = scalars["rng.numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), position, has_gauss, gauss))
    python_version, python_state, python_gauss = scalars["rng.python"]
    random.setstate((python_version, tuple(python_state), python_gauss))


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """The learning rate of optimizer step `step` (0-based) as a fraction of the peak."""
    if step + 1 < warmup_steps or schedule == "constant":
        return min((step + 1) / warmup_steps, 1.0)
    progress = (step + 1 - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


class WeightAverage:
    """An exponential moving average of the trained parameters (Polyak averaging), updated after every optimizer
    step; training goes on from the raw weights. The decay ramps up as min(decay, (1 + t) / (10 + t)) over the
    steps t, so that the first averages are not dominated by the initial weights."""

    def __init__(self, parameters: list[nn.Parameter], decay: float):
        self.parameters, self.decay, self.steps = parameters, decay, 0
        self.average = [p.detach().clone() for p in parameters]

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        weight = 1 - min(self.decay, (1 + self.steps) / (10 + self.steps))
        for average, parameter in zip(self.average, self.parameters):
            average.lerp_(parameter.detach(), weight)

    @contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its raw weights again after it."""
        raw = [p.detach().clone() for p in self.parameters]
        for parameter, average in zip(self.parameters, self.average):
            parameter.copy_(average)
        try:
            yield
        finally:
            for parameter, weights in zip(self.parameters, raw):
                parameter.copy_(weights)

    def state(self) -> tuple[dict, dict]:
        return {f"average.{i}": a for i, a in enumerate(self.average)}, {"average_steps": self.steps}

    @torch.no_grad()
    def restore(self, tensors: dict, scalars: dict) -> None:
        for i, average in enumerate(self.average):
            average.copy_(tensors[f"average.{i}"])
        self.steps = scalars["average_steps"]


class Trainer:
    def __init__(self, model: nn.Module, batches: BatchSource, config: TrainConfig, settings: dict,
                 model_dir: Path, validation: Validation):
        self.model, self.batches, self.config, self.settings = model, batches, config, settings
        self.model_dir, self.validation = Path(model_dir), validation
        self.generator = torch.Generator().manual_seed(config.seed)  # the order of batches
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        if config.average_decay >= 1:
            raise InputError(f"the decay of the weight average must be below 1 (e.g. 0.995), or 0 for none, not "
                             f"{config.average_decay}", "average_decay")
        self.average = WeightAverage(self.parameters, config.average_decay) if config.average_decay > 0 else None
        raw_column = [f"raw_{validation.column}"] if self.average else []  # the raw weights' score beside it
        self.log_columns = [config.round_name, "optimizer_steps", "train_loss", "lr", validation.column,
                            *raw_column, "seconds"]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.lr, weight_decay=config.weight_decay)
        total_steps = math.ceil(len(batches) / config.grad_accum_steps) * config.rounds
        self.warmup_steps = config.warmup_steps or max(1, total_steps // 20)
        if self.warmup_steps > total_steps:
            print(f"note: {self.warmup_steps} warm-up steps exceed the {total_steps} optimizer steps of this run; "
                  "the learning rate never reaches its peak")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, self.warmup_steps, total_steps, config.lr_schedule))
        self.start_round, self.best_score = 0, -math.inf if validation.higher_is_better else math.inf
        self.log_rows: list[list] = []

    def restore(self, checkpoint: Path) -> None:
        """Continue from a checkpoint whose weights the model was built from."""
        scalars = json.loads((checkpoint / "training_state.json").read_text())
        tensors = load_file(checkpoint / "training_state.safetensors")
        restore_optimizer(self.optimizer, tensors, scalars)
        self.scheduler.load_state_dict(scalars["scheduler"])
        restore_generator_states(self.generator, tensors, scalars)
        if bool(self.average) != ("average_steps" in scalars):
            raise InputError(f"{checkpoint} was trained {'without' if self.average else 'with'} a weight average; "
                             "resume it with the --average-decay it began with", "average_decay")
        if self.average:
            self.average.restore(tensors, scalars)
        self.start_round, self.best_score = scalars["round"], scalars["best_score"]
        if (self.model_dir / "train_log.csv").is_file():
            with open(self.model_dir / "train_log.csv", newline="") as log:
                self.log_rows = [row for row in list(csv.reader(log))[1:] if int(row[0]) <= self.start_round]

    def _training_state(self, completed_rounds: int) -> tuple[dict, dict]:
        tensors, scalars = optimizer_state(self.optimizer)
        rng_tensors, rng_scalars = generator_states(self.generator)
        scalars.update(rng_scalars, round=completed_rounds, best_score=self.best_score,
                       scheduler=self.scheduler.state_dict())
        if self.average:
            average_tensors, average_scalars = self.average.state()
            tensors.update(average_tensors)
            scalars.update(average_scalars)
        return {**tensors, **rng_tensors}, scalars

    def train_round(self, index: int) -> float:
        self.model.train()
        losses, accum, count = [], self.config.grad_accum_steps, len(self.batches)
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(self.batches.round(self.generator), total=count, unit="batch",
                   desc=f"{self.config.round_name} {index + 1}/{self.config.rounds}")
        start = time.perf_counter()
        for step, batch in enumerate(bar):
            loss = self.model.loss(batch)
            (loss / accum).backward()
            if (step + 1) % accum == 0 or step + 1 == count:
                torch.nn.utils.clip_grad_norm_(self.parameters, GRAD_CLIP)  # once per optimizer step
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.average:
                    self.average.update()
            losses.append(loss.item())
            if step == 0 and index == self.start_round:
                bar.write(self.first_batch_report(time.perf_counter() - start, count))
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
        return sum(losses) / len(losses)

    def first_batch_report(self, seconds: float, batches_per_round: int) -> str:
        """How long the run will take at the first batch's pace, and the memory that batch needed."""
        rounds_left, name = self.config.rounds - self.start_round, self.config.round_name
        per_round = seconds * batches_per_round
        return (f"first batch {seconds:.2f} s: at this pace an {name} of {batches_per_round} batches takes "
                f"{duration_text(per_round)}, the {rounds_left} to go {duration_text(rounds_left * per_round)} "
                f"(validation not counted); peak memory: {measured_peaks()}")

    def fit(self) -> float:
        """Train the remaining rounds; returns the best validation score."""
        config, name = self.config, self.validation.name
        for index in range(self.start_round, config.rounds):
            start = time.perf_counter()
            loss = self.train_round(index)
            score = raw_score = None
            if (index + 1) % config.eval_every == 0 or index + 1 == config.rounds:
                if self.average:
                    raw_score = self.score_raw_weights()
                with self.average.applied() if self.average else nullcontext():
                    score = self.validation.evaluate(self.model)
                    if self.validation.better(score, self.best_score):
                        self.best_score = score
                        save_policy(self.model, self.settings, self.model_dir / "best_model")
            save_policy(self.model, self.settings, self.model_dir / "checkpoint", self._training_state(index + 1))
            raw_cell = ["" if raw_score is None else f"{raw_score:.6f}"] if self.average else []
            self.log_rows.append([index + 1, self.scheduler.last_epoch, f"{loss:.6f}",
                                  f"{self.scheduler.get_last_lr()[0]:.3g}", "" if score is None else f"{score:.6f}",
                                  *raw_cell, f"{time.perf_counter() - start:.1f}"])
            text = io.StringIO()
            csv.writer(text).writerows([self.log_columns, *self.log_rows])
            atomic_write_text(self.model_dir / "train_log.csv", text.getvalue())
            raw = "" if raw_score is None else f"; raw weights {raw_score:.4f}"
            valid = "" if score is None else f", validation {name} {score:.4f} (best {self.best_score:.4f}{raw})"
            print(f"{config.round_name} {index + 1}: train loss {loss:.4f}{valid}", flush=True)
        return self.best_score

    def score_raw_weights(self) -> float:
        """Validate the raw weights leaving training's random generators as they were, so that this extra
        validation does not change how training goes on."""
        tensors, scalars = generator_states(self.generator)
        score = self.validation.evaluate(self.model)
        restore_generator_states(self.generator, tensors, scalars)
        return score
