"""Collect an experience pool from conventional policies, for adapting the LLM offline.

    python generate_exp_pool.py --models mpc genet --trace fcc-train --video video1 --trace-num -1 --seeds 1 2

Every (policy, seed, trace set, video) streams --trace-num traces of the set once, in shuffled order with
delay noise unless --fixed-order is given (so seeds give different episodes even when all traces are used,
unlike the original, whose --seed had no effect); episodes are split into blocks of traces that worker
processes run in parallel. Each block draws its delay noise and the Pensieve family's sampling
from its own generator, seeded by (seed, block) whatever the trace set and video, so the pool does not
depend on the number of workers.

Teachers per environment: `--trace-models TRACE=POLICY[,POLICY]` lets other policies than --models stream a
trace set (e.g. the policy that does best on it), so that the pool shows each environment its best teacher.

Best-of-policies pools: `--keep-best k` keeps, of the episodes that the policies played on the same trace from
the same start with the same seed and video, only the k with the highest return (a pool better than any of
its teachers alone); metadata.json says how many episodes each policy kept and each one's mean episode
return on the same episodes.
The pool is a folder (plm_special/experience.py): transitions.npz and metadata.json.
"""
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from abr_sim.datasets import load_trace_set, load_video, resolve_data_root
from abr_sim.evaluation import run_episodes
from abr_sim.policy import Policy
from abr_sim.simulator import episode_schedule
from baselines import BASELINES, make_baseline
from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting
from plm_special.experience import ExperiencePool

BLOCK_SIZE = 10  # traces per work unit


class RecordingPolicy(Policy):
    """Passes decisions through and records (state seen, bitrate chosen, QoE of that chunk, last chunk?)."""

    def __init__(self, policy: Policy):
        self.policy, self.name = policy, policy.name
        self.pending, self.transitions = {}, []

    def reset(self, client=0):
        self.pending.pop(client, None)
        self.policy.reset(client)

    def act_batch(self, observations, clients):
        actions = self.policy.act_batch(observations, clients)
        for observation, client, action in zip(observations, clients, actions):
            if client in self.pending:
                state, previous = self.pending.pop(client)
                self.transitions.append((state, previous, observation.reward, observation.done))
            if not observation.done:  # the decision after the last chunk is discarded
                self.pending[client] = (observation.state.astype(np.float32), action)
        return actions


def collect_block(model, seed, block, data_root, trace, video_name, fixed_order, trace_num, deterministic):
    """Run one block of episodes with one policy; returns its transitions as arrays."""
    trace_set, video = load_trace_set(data_root, trace), load_video(data_root, video_name)
    schedule = episode_schedule(trace_set, fixed_order, trace_num)[block * BLOCK_SIZE:(block + 1) * BLOCK_SIZE]
    rng = np.random.RandomState([seed, block])
    recorder = RecordingPolicy(make_baseline(model, video, data_root, rng, deterministic=deterministic))
    run_episodes(recorder, trace_set, video, schedule, None if fixed_order else rng, progress=False)
    states, actions, rewards, dones = zip(*recorder.transitions)
    return np.stack(states), np.array(actions), np.array(rewards), np.array(dones)


def split_episodes(arrays: tuple) -> list[tuple]:
    """A block's (states, actions, rewards, dones) as one such tuple per episode, in play order."""
    ends = np.flatnonzero(arrays[3]) + 1
    return [tuple(a[start:end] for a in arrays) for start, end in zip([0, *ends[:-1]], ends)]


def keep_best(results: dict, models: list[str], k: int) -> tuple[dict, dict]:
    """Of the episodes the models played on the same (seed, trace set, video, block, episode), keep the k with
    the highest return (ties: the earlier model in `models`). Returns the kept episodes per job and statistics."""
    episodes = {job: split_episodes(arrays) for job, arrays in results.items()}
    kept = {job: [] for job in results}
    counts, returns = dict.fromkeys(models, 0), {m: [] for m in models}
    for group in sorted({job[1:] for job in results}):
        present = [m for m in models if (m, *group) in episodes]  # --trace-models: the trace set's own
        for index in range(len(episodes[(present[0], *group)])):
            candidates = [(float(episodes[(m, *group)][index][2].sum()), m) for m in present]
            for episode_return, model in candidates:
                returns[model].append(episode_return)
            for _, model in sorted(candidates, key=lambda c: -c[0])[:k]:
                kept[(model, *group)].append(episodes[(model, *group)][index])
                counts[model] += 1
    kept = {job: tuple(np.concatenate(parts) for parts in zip(*eps)) for job, eps in kept.items() if eps}
    return kept, {"kept_episodes": counts,
                  "mean_episode_return": {m: float(np.mean(r)) for m, r in returns.items() if r}}


@dataclass
class Settings:
    models: list[str] | None = setting(None, "conventional policies whose experience fills the pool, space- or "
                                             f"comma-separated: {', '.join(BASELINES)}", required=True)
    trace: list[str] | None = setting(None, "trace sets the policies stream, e.g. fcc-train", required=True)
    trace_models: list[str] | None = setting(None, "TRACE=POLICY[,POLICY]: the policies that stream that trace set "
                                                   "(one of --trace) instead of --models")
    video: list[str] | None = setting(None, "videos they stream (each over every trace set), e.g. video1",
                                      required=True)
    trace_num: int = setting(-1, "traces per (policy, seed, trace set, video); -1 = all")
    seeds: list[int] = setting([100003], "one pass over the traces per seed (shuffled order, delay noise and "
                                         "sampling differ)", aliases=("--seed",))
    fixed_order: bool = setting(False, "traces in name order, no delay noise")
    deterministic: bool = setting(False, "Pensieve family: take the most likely action, not a sampled one")
    workers: int = setting(2, "parallel processes (blocks of 10 traces each)", minimum=1)
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    keep_best: int | None = setting(None, "keep only the k best episodes (by return) of those the policies played "
                                          "on the same trace, start, seed and video (default: keep all)", minimum=1)
    output: str | None = setting(None, "pool folder (default: artifacts/exp_pools/...)")
    cuda_id: int | None = setting(None, "accepted for compatibility (the pool is collected on the CPU)")


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    models = [m for item in args.models for m in item.split(",") if m]
    trace_models = {}
    for item in args.trace_models or []:
        trace, _, names = item.rpartition("=")
        if trace not in args.trace:
            raise InputError(f"{item}: expected TRACE=POLICY[,POLICY] with TRACE one of --trace "
                             f"({' '.join(args.trace)})", "trace_models")
        trace_models[trace] = [m for m in names.split(",") if m]
    teachers = {trace: trace_models.get(trace, models) for trace in args.trace}
    all_models = list(dict.fromkeys(m for trace in args.trace for m in teachers[trace]))
    unknown = [m for m in all_models if m not in BASELINES]
    if unknown or not all(teachers.values()):
        raise InputError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(BASELINES)}")
    data_root = resolve_data_root(args.data_dir)
    if args.trace_num == 0 or args.trace_num < -1:
        raise InputError(f"--trace-num must be -1 (all) or a positive number, got {args.trace_num}")
    for flag, names in (("--trace", args.trace), ("--video", args.video)):
        if len(set(names)) < len(names):
            raise InputError(f"{flag} names a {flag[2:]} twice ({' '.join(names)}); name each once")
    trace_nums = {}  # per trace set
    for trace in args.trace:
        available = len(load_trace_set(data_root, trace).traces)
        trace_nums[trace] = available if args.trace_num == -1 else min(args.trace_num, available)
    videos = {name: load_video(data_root, name) for name in args.video}
    fixed_order = args.fixed_order  # unlike run_baseline.py, using every trace does not fix the order
    output = Path(args.output) if args.output else (
        Path("artifacts") / "exp_pools" / f"{'+'.join(Path(t).name for t in args.trace)}_"
        f"{'+'.join(video.name for video in videos.values())}" / "_".join(all_models)
        / f"seeds_{'_'.join(map(str, args.seeds))}_trace_num_{args.trace_num}_fixed_{fixed_order}")
    if output.exists():
        raise InputError(f"experience pool {output} already exists; remove it or pick another --output")
    for model in all_models:  # fail on a missing checkpoint before starting the workers
        make_baseline(model, videos[args.video[0]], data_root, np.random.RandomState(0))

    jobs = [(m, s, t, v, b) for m in all_models for s in args.seeds for t in args.trace if m in teachers[t]
            for v in args.video for b in range((trace_nums[t] + BLOCK_SIZE - 1) // BLOCK_SIZE)]
    results = {}
    total = len(args.seeds) * len(args.video) * sum(len(teachers[t]) * trace_nums[t] for t in args.trace)
    with ProcessPoolExecutor(max_workers=args.workers) as pool, tqdm(total=total, desc="episodes", unit="trace") as bar:
        futures = {pool.submit(collect_block, m, s, b, data_root, t, v, fixed_order, trace_nums[t],
                               args.deterministic): (m, s, t, v, b) for m, s, t, v, b in jobs}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update(len(results[futures[future]][3].nonzero()[0]))
    best = {}
    if args.keep_best:
        results, best = keep_best(results, all_models, args.keep_best)
    states, actions, rewards, dones = (np.concatenate([results[job][i] for job in jobs if job in results])
                                       for i in range(4))
    pool = ExperiencePool(states, actions, rewards, dones, metadata={
        "source_policies": all_models, "trace_models": teachers, "trace_sets": args.trace, "videos": args.video,
        "trace_nums": trace_nums, "fixed_order": fixed_order, "seeds": args.seeds, "deterministic": args.deterministic,
        "keep_best": args.keep_best, **best, "data_root": str(data_root),
    })
    pool.save(output)
    stats = pool.statistics()
    print(f"pool {output}: {stats['num_transitions']} transitions, {stats['num_episodes']} episodes, "
          f"reward {stats['reward_min']:.3f}..{stats['reward_max']:.3f}, "
          f"mean episode return {stats['episode_return_mean']:.3f}")
    if best:
        print(f"kept the best {args.keep_best} of {len(all_models)} per episode: " + ", ".join(
            f"{m} {best['kept_episodes'][m]} (alone {best['mean_episode_return'][m]:.3f})" for m in all_models))


if __name__ == "__main__":
    main()
