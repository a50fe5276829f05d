"""Collect an experience pool of scheduling decisions from Decima, Fair, FIFO, FCFS or a mix.

    python generate_exp_pool.py --scheds decima --pool-size 1000 --complete-episode --seed 1

Each scheduler plays whole episodes with seeds --seed, --seed + 1, ... (the environment's and the
scheduler's), in parallel processes, until it has contributed --pool-size / (number of schedulers)
decisions; with --complete-episode its last episode is kept whole, otherwise it is cut there. The pool is a
folder (plm_special/experience.py): transitions.npz and metadata.json.
"""
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting
from plm_special.experience import DecisionRecorder
from schedulers import SCHEDULERS, make_scheduler
from spark_sched_sim.datasets import resolve_data_root
from spark_sched_sim.env_settings import EnvSettings, make_env_factory
from spark_sched_sim.evaluation import run_episodes
from spark_sched_sim.graph_observation import GraphObserver


@dataclass
class Settings(EnvSettings):
    scheds: list[str] = setting(["decima"], "conventional schedulers whose decisions fill the pool, space- or "
                                            "comma-separated: fair, fifo, fcfs, decima")
    pool_size: int = setting(1000, "decisions in the pool, split evenly among the schedulers", minimum=1)
    complete_episode: bool = setting(False, "keep each scheduler's last episode whole instead of cutting it")
    seed: int = setting(1, "first episode seed (the environment's and the scheduler's); then seed + 1, ...")
    state_dict_path: str | None = setting(None, "Decima's weights (default: the original model.pt)")
    device: str = setting("cpu", "Decima's device")
    workers: int = setting(2, "episodes played in parallel processes", minimum=1)
    output: str | None = setting(None, "pool folder (default: artifacts/exp_pool/...)")


def play_episode(args: Settings, data_root: Path, scheduler_name: str, seed: int) -> list[tuple]:
    """One episode through the evaluation loop; returns (graph, stage, job, executors - 1, reward, wall time,
    done) per decision that schedules a stage."""
    torch.set_num_threads(1)
    scheduler = make_scheduler(scheduler_name, args.num_executors, data_root, seed, args.state_dict_path,
                               device=args.device)
    observer, decisions = GraphObserver(args.num_executors), []

    def record(env_id, observation, info, action, reward, done):
        graph = observer(observation)
        if action["stage_idx"] == -1:
            return
        schedulable = np.flatnonzero(graph.stage_mask)
        job = int(np.searchsorted(graph.ptr, schedulable[action["stage_idx"]], side="right") - 1)
        exec_index = min(int(action["num_exec"]), int(graph.exec_caps[job])) - 1
        decisions.append((graph, int(action["stage_idx"]), job, exec_index, reward, info["wall_time"], done))

    run_episodes(make_env_factory(args, data_root), scheduler, [seed], progress=False, on_step=record)
    if decisions:
        decisions[-1] = decisions[-1][:-1] + (True,)
    return decisions


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    schedulers = [s for item in args.scheds for s in item.split(",") if s]
    unknown = [s for s in schedulers if s not in SCHEDULERS or s == "random"]
    if unknown or not schedulers:
        raise InputError(f"unknown scheduler(s) {', '.join(unknown) or '(none)'}; choose from fair, fifo, fcfs, decima")
    data_root = resolve_data_root(args.data_dir)
    make_env_factory(args, data_root)  # one clear error for bad settings or data, before any work
    for name in schedulers:
        make_scheduler(name, args.num_executors, data_root, 0, args.state_dict_path)
    output = Path(args.output) if args.output else (
        Path("artifacts") / "exp_pool" / args.dataset / args.env_folder_name()
        / "_".join(schedulers) / f"seed_{args.seed}_size_{args.pool_size}{'_complete' * args.complete_episode}")
    if output.exists():
        raise InputError(f"experience pool {output} already exists; remove it or pick another --output")

    recorder, target = DecisionRecorder(), args.pool_size // len(schedulers) or 1
    episodes = {}
    with ProcessPoolExecutor(max_workers=args.workers) as pool, tqdm(total=target * len(schedulers),
                                                                     desc="decisions", unit="step") as bar:
        for name in schedulers:
            collected, seed = [], args.seed
            while len(collected) < target:
                seeds = list(range(seed, seed + args.workers))
                results = list(pool.map(play_episode, [args] * len(seeds), [data_root] * len(seeds),
                                        [name] * len(seeds), seeds))
                for episode_seed, decisions in zip(seeds, results):
                    if len(collected) >= target:
                        break
                    room = len(decisions) if args.complete_episode else target - len(collected)
                    collected += decisions[:room]
                    episodes.setdefault(name, []).append(episode_seed)
                    bar.update(min(room, len(decisions)))
                seed += args.workers
            collected[-1] = collected[-1][:-1] + (True,)  # a cut episode still ends the scheduler's part
            for decision in collected:
                recorder.add(*decision)
    pool = recorder.to_pool({
        "source_schedulers": schedulers, "episode_seeds": episodes, "dataset": args.dataset,
        "num_executors": args.num_executors, "job_arrival_cap": args.job_arrival_cap,
        "job_arrival_rate": args.job_arrival_rate, "moving_delay": args.moving_delay,
        "warmup_delay": args.warmup_delay, "complete_episode": args.complete_episode, "data_root": str(data_root),
    })
    pool.save(output)
    stats = pool.statistics()
    print(f"pool {output}: {stats['num_transitions']} decisions, {stats['num_episodes']} episodes, "
          f"reward {stats['reward_min']:.0f}..{stats['reward_max']:.0f}, "
          f"up to {stats['max_schedulable_stages']} schedulable stages")


if __name__ == "__main__":
    main()
