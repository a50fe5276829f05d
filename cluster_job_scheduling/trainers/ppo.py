"""PPO training of Decima (the original's `train_baseline.py`, after spark-sched-sim's `trainers/ppo.py`), on
the CPU, resumable.

Each iteration collects `num_sequences` x `num_rollouts` episodes: rollouts of a sequence share its job
arrival seed and differ in the scheduler's sampling. Episodes stop at an exponentially distributed time
limit (mean `mean_time_limit`). Returns are continuously discounted in wall time (beta_discount); the
baseline of a step is the mean, over the sequence's rollouts, of their returns interpolated at the step's
wall time. The policy is updated with the clipped PPO objective plus an entropy bonus, stopping an
iteration early when the approximate KL divergence exceeds 1.5 x target_kl.
"""
import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from munch import Munch
from safetensors.torch import load_file, save_file
from torch_geometric.utils import scatter, softmax

from schedulers.decima import DecimaScheduler
from schedulers.graph_encoder import add_indices
from common.files import atomic_folder, atomic_write_text
from spark_sched_sim.graph_observation import collate
from spark_sched_sim.evaluation import job_records
from spark_sched_sim.metrics import average_jct_s

LOG_COLUMNS = ["iteration", "avg_num_jobs", "avg_jct_s", "mean_return", "policy_loss", "entropy", "approx_kl",
               "lr", "seconds"]


@dataclass
class Rollout:
    graphs: list = field(default_factory=list)
    actions: list = field(default_factory=list)  # (stage index, job index, executor index)
    lgprobs: list = field(default_factory=list)
    rewards: list = field(default_factory=list)
    wall_times: list = field(default_factory=lambda: [0.0])


def collect_rollout(env, scheduler: DecimaScheduler, seed: int, time_limit: float) -> tuple[Rollout, dict]:
    rollout = Rollout()
    scheduler.reset()
    observation, _ = env.reset(seed=seed, options={"time_limit": time_limit})
    done = False
    while not done:
        graph = scheduler.graph_observation(observation)
        with torch.no_grad():
            (action,), (lgprob,) = scheduler.decide([graph])
        observation, reward, terminated, _, info = env.step(action)
        done = terminated or info["wall_time"] >= time_limit
        rollout.graphs.append(graph)
        rollout.actions.append((action["stage_idx"], action["job_idx"], action["exec_idx"]))
        rollout.lgprobs.append(lgprob)
        rollout.rewards.append(reward)
        rollout.wall_times.append(info["wall_time"])
    durations = env.job_durations_ms()
    stats = {"avg_num_jobs": sum(durations) / max(env.wall_time, 1.0),
             "avg_jct_s": average_jct_s(job_records(env, seed))}
    return rollout, stats


def discounted_returns(rollout: Rollout, beta: float) -> np.ndarray:
    dt = np.diff(rollout.wall_times)
    returns, running = np.zeros(len(rollout.rewards)), 0.0
    for k in range(len(rollout.rewards) - 1, -1, -1):
        running = rollout.rewards[k] + math.exp(-beta * 1e-3 * dt[k]) * running
        returns[k] = running
    return returns


def interpolated_baselines(times: list[np.ndarray], returns: list[np.ndarray]) -> list[np.ndarray]:
    """Mean over rollouts of each rollout's returns, linearly interpolated at every step's wall time."""
    grid = np.unique(np.concatenate(times))
    mean = np.mean([np.interp(grid, t, r) for t, r in zip(times, returns)], axis=0)
    return [np.interp(t, grid, mean) for t in times]


def evaluate_actions(scheduler: DecimaScheduler, graphs, actions: torch.Tensor):
    """Log-probabilities and normalised entropies of the taken actions, with gradients, for a minibatch."""
    actor = scheduler.actor
    batch = collate(graphs)
    add_indices(batch)
    h_node, h_dag, h_glob = actor.encoder(batch)
    stage_scores = actor.stage_scores(batch, h_node, h_dag, h_glob)
    stage_obs = batch.batch[batch.stage_mask]
    stage_probs = softmax(stage_scores, stage_obs, num_nodes=batch.num_graphs).clamp(1e-7, 1.0)
    stage_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.bincount(
        stage_obs, minlength=batch.num_graphs), 0)])
    job_offsets = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(batch.jobs_per_obs, 0)])
    jobs = actions[:, 1] + job_offsets[:-1]
    exec_scores = actor.exec_scores(batch, h_dag, h_glob, jobs)
    exec_index = torch.repeat_interleave(torch.arange(len(jobs)), batch.exec_caps[jobs])
    exec_probs = softmax(exec_scores, exec_index, num_nodes=len(jobs)).clamp(1e-7, 1.0)
    exec_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(batch.exec_caps[jobs], 0)])
    lgprobs = stage_probs[stage_ptr[:-1] + actions[:, 0]].log() + exec_probs[exec_ptr[:-1] + actions[:, 2]].log()
    entropy = (scatter(-stage_probs * stage_probs.log(), stage_obs, dim=0, dim_size=batch.num_graphs)
               + scatter(-exec_probs * exec_probs.log(), exec_index, dim=0, dim_size=len(jobs)))
    num_nodes = torch.bincount(batch.batch, minlength=batch.num_graphs).float()
    return lgprobs, entropy / (scheduler.num_executors * num_nodes).log()


class PPOTrainer:
    def __init__(self, scheduler: DecimaScheduler, make_env, config: Munch, mean_time_limit: float, out_dir: Path):
        self.scheduler, self.make_env, self.config = scheduler, make_env, config
        self.mean_time_limit, self.out_dir = mean_time_limit, Path(out_dir)
        self.optimizer = torch.optim.Adam(scheduler.actor.parameters(), lr=config.lr)
        self.lr_schedule = torch.optim.lr_scheduler.StepLR(self.optimizer, config.get("lr_step", 100), 0.5)
        self.iteration, self.best = 0, None
        self.rows: list[list] = []

    # ---------------------------------------------------------------- checkpoints
    def save_latest(self) -> None:
        tensors = {f"actor.{k}": v.contiguous() for k, v in self.scheduler.actor.state_dict().items()}
        state = self.optimizer.state_dict()
        tensors |= {f"optimizer.{i}.{k}": v for i, s in state["state"].items() for k, v in s.items()}
        tensors["rng.torch"] = torch.get_rng_state()
        scalars = {"iteration": self.iteration, "param_groups": state["param_groups"],
                   "lr_schedule": self.lr_schedule.state_dict(), "best": self.best,
                   "scheduler_rng": self.scheduler.rng.bit_generator.state}
        with atomic_folder(self.out_dir / "latest") as staging:
            save_file(tensors, staging / "training_state.safetensors")
            (staging / "training_state.json").write_text(json.dumps(scalars))

    def restore_latest(self) -> None:
        folder = self.out_dir / "latest"
        tensors = load_file(folder / "training_state.safetensors")
        scalars = json.loads((folder / "training_state.json").read_text())
        self.scheduler.actor.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("actor.")})
        optimizer_state: dict = {}
        for name, value in tensors.items():
            if name.startswith("optimizer."):
                _, index, key = name.split(".", 2)
                optimizer_state.setdefault(int(index), {})[key] = value
        self.optimizer.load_state_dict({"state": optimizer_state, "param_groups": scalars["param_groups"]})
        self.lr_schedule.load_state_dict(scalars["lr_schedule"])
        torch.set_rng_state(tensors["rng.torch"])
        self.scheduler.rng.bit_generator.state = scalars["scheduler_rng"]
        self.iteration, self.best = scalars["iteration"], scalars["best"]
        log = self.out_dir / "train_log.csv"
        if log.exists():
            self.rows = [row for row in list(csv.reader(log.open()))[1:] if int(row[0]) <= self.iteration]

    def save_best(self) -> None:
        """The best model of the last checkpointing window (fewest concurrent jobs), in checkpoints/<i>/."""
        with atomic_folder(self.out_dir / "checkpoints" / str(self.iteration)) as staging:
            save_file(load_file(self.out_dir / "best_in_window.safetensors"), staging / "model.safetensors")
            (staging / "state.json").write_text(json.dumps(self.best, indent=2))
        self.best = None

    # ---------------------------------------------------------------- one iteration
    def collect(self) -> tuple[list, list, list]:
        c = self.config
        rollouts, stats = [], []
        for sequence in range(c.num_sequences):
            seed = c.seed + sequence + c.num_sequences * self.iteration
            time_limit = np.random.default_rng(seed).exponential(self.mean_time_limit)
            for _ in range(c.num_rollouts):
                rollout, rollout_stats = collect_rollout(self.make_env(), self.scheduler, seed, time_limit)
                rollouts.append(rollout)
                stats.append(rollout_stats)
        advantages = []
        for sequence in range(c.num_sequences):
            group = rollouts[sequence * c.num_rollouts:(sequence + 1) * c.num_rollouts]
            returns = [discounted_returns(r, c.beta_discount) for r in group]
            baselines = interpolated_baselines([np.array(r.wall_times[:-1]) for r in group], returns)
            advantages += [ret - base for ret, base in zip(returns, baselines)]
        return rollouts, advantages, stats

    def update(self, rollouts, advantages) -> dict:
        c = self.config
        graphs = [g for r in rollouts for g in r.graphs]
        actions = torch.tensor([a for r in rollouts for a in r.actions])
        old_lgprobs = torch.tensor([p for r in rollouts for p in r.lgprobs], dtype=torch.float32)
        advantages = torch.from_numpy(np.concatenate(advantages)).float()
        batch_size = len(graphs) // c.num_batches + 1
        generator = torch.Generator().manual_seed(c.seed + self.iteration)
        policy_losses, entropies, kls = [], [], []
        self.scheduler.actor.train()
        for _ in range(c.num_epochs):
            order = torch.randperm(len(graphs), generator=generator)
            stop = False
            for start in range(0, len(graphs), batch_size):
                index = order[start:start + batch_size]
                lgprobs, entropy = evaluate_actions(self.scheduler, [graphs[i] for i in index], actions[index])
                advantage = advantages[index]
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
                log_ratio = lgprobs - old_lgprobs[index]
                ratio = log_ratio.exp()
                clipped = torch.clamp(ratio, 1 - c.clip_range, 1 + c.clip_range)
                policy_loss = -torch.min(advantage * ratio, advantage * clipped).mean()
                loss = policy_loss - c.entropy_coeff * entropy.mean()
                with torch.no_grad():
                    kl = ((ratio - 1) - log_ratio).mean().item()
                policy_losses.append(policy_loss.item())
                entropies.append(entropy.mean().item())
                kls.append(kl)
                if c.target_kl is not None and kl > 1.5 * c.target_kl:
                    stop = True
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(self.scheduler.actor.parameters(), c.max_grad_norm)
                if torch.isfinite(norm):
                    self.optimizer.step()
            if stop:
                break
        self.scheduler.actor.eval()
        return {"policy_loss": float(np.mean(policy_losses)), "entropy": float(np.mean(entropies)),
                "approx_kl": float(np.mean(kls))}

    def train(self, progress=None) -> None:
        c = self.config
        while self.iteration < c.num_iterations:
            start = time.perf_counter()
            weights = {k: v.clone().contiguous() for k, v in self.scheduler.actor.state_dict().items()}
            rollouts, advantages, stats = self.collect()
            learning = self.update(rollouts, advantages)
            self.lr_schedule.step()
            avg_num_jobs = float(np.mean([s["avg_num_jobs"] for s in stats]))
            if self.best is None or avg_num_jobs < self.best["avg_num_jobs"]:  # the weights that produced it
                self.best = {"iteration": self.iteration + 1, "avg_num_jobs": avg_num_jobs}
                temporary = self.out_dir / ".best_in_window.safetensors.tmp"
                save_file(weights, temporary)
                temporary.replace(self.out_dir / "best_in_window.safetensors")
            self.iteration += 1
            self.rows.append([self.iteration, f"{avg_num_jobs:.4f}", f"{np.mean([s['avg_jct_s'] for s in stats]):.3f}",
                              f"{np.mean([discounted_returns(r, c['beta_discount'])[0] for r in rollouts]):.1f}",
                              f"{learning['policy_loss']:.5f}", f"{learning['entropy']:.5f}",
                              f"{learning['approx_kl']:.5f}", f"{self.lr_schedule.get_last_lr()[0]:.3g}",
                              f"{time.perf_counter() - start:.1f}"])
            text = io.StringIO()
            csv.writer(text).writerows([LOG_COLUMNS, *self.rows])
            atomic_write_text(self.out_dir / "train_log.csv", text.getvalue())
            if self.iteration % c.checkpointing_freq == 0 or self.iteration == c.num_iterations:
                self.save_best()
            self.save_latest()
            if progress:
                progress(self.iteration, avg_num_jobs, learning)
