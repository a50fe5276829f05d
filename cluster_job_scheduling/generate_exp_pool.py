"""Collect an experience pool of scheduling decisions from Decima, Fair, FIFO, FCFS, Random or a mix.

    python generate_exp_pool.py --scheds decima --pool-size 1000 --complete-episode --seed 1
    python generate_exp_pool.py --scheds fifo,fair,fcfs --keep-best 1 --pool-size 3000 --complete-episode
    python generate_exp_pool.py --scheds decima --rollouts-per-seed 4 --segment-s 300 --pool-size 250000 \
        --complete-episode

Job sequences (episode seeds) --seed, --seed + 1, ... are played, in parallel processes, by every scheduler
--rollouts-per-seed times if it samples its decisions (Decima, Random; rollout r of seed s seeds the
sampling with (s, r), rollout 0 with s itself, as run_baseline.py does), once if it is deterministic. All
episodes are kept, or with --keep-best k only the k of each seed with the lowest average JCT (best-of-N:
better behaviour on average than any one scheduler, for return conditioning to pick). Seeds continue until
the pool holds --pool-size decisions;
with --complete-episode the last episode is kept whole, otherwise it is cut there. The pool is a folder
(plm_special/experience.py): transitions.npz and metadata.json; its metadata records, per kept episode,
the seed, scheduler, rollout and average JCT. With --segment-s, selection works within an episode instead:
each sampling scheduler plays one episode per seed, made of segments of that many simulated seconds, each the
best (least job time in the segment) of --rollouts-per-seed continuations from the same state, one per
rollout's scheduler; its first plain rollout is also played, as the reference the pool is reported against.
Every finished seed is kept in <output>.partial/ until the pool is written, so a rerun of the same command
after an interruption continues where it stopped.
"""
import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.files import atomic_write_text
from common.settings import setting
from plm_special.experience import DecisionRecorder, concatenate, load_pool
from schedulers import SAMPLING, SCHEDULERS, make_scheduler
from schedulers.exploration import Exploring
from spark_sched_sim.datasets import resolve_data_root
from spark_sched_sim.env_settings import EnvSettings, make_env_factory
from spark_sched_sim.evaluation import job_records, run_episodes
from spark_sched_sim.graph_observation import GraphObserver
from spark_sched_sim.metrics import average_jct_s


@dataclass
class Settings(EnvSettings):
    scheds: list[str] = setting(["decima"], "conventional schedulers that play every seed, space- or "
                                            "comma-separated: fair, fifo, fcfs, random, decima")
    rollouts_per_seed: int = setting(1, "episodes each sampling scheduler (Decima, Random) plays per seed, "
                                        "each with its own sampling seed", minimum=1)
    explore: float = setting(0.0, "rollouts after the first take a Random decision instead of the scheduler's "
                                  "with this probability (so deterministic schedulers get rollouts too)")
    segment_s: float | None = setting(None, "select within episodes: segments of this many simulated seconds, "
                                            "each the best of --rollouts-per-seed continuations (default: whole "
                                            "episodes)", minimum=1)
    keep_best: int | None = setting(None, "per seed, keep only the k episodes with the lowest average JCT "
                                          "(default: keep all)", minimum=1)
    pool_size: int = setting(1000, "decisions in the pool", minimum=1)
    complete_episode: bool = setting(False, "keep each scheduler's last episode whole instead of cutting it")
    seed: int = setting(1, "first episode seed (the environment's and the scheduler's); then seed + 1, ...")
    state_dict_path: str | None = setting(None, "Decima's weights (default: the original model.pt)")
    device: str = setting("cpu", "Decima's device")
    workers: int = setting(2, "episodes played in parallel processes", minimum=1)
    output: str | None = setting(None, "pool folder (default: artifacts/exp_pool/...)")


def scheduler_seed(seed: int, rollout: int) -> int:
    return seed if rollout == 0 else int(np.random.SeedSequence([seed, rollout]).generate_state(1)[0])


def make_rollout_scheduler(args: Settings, data_root: Path, scheduler_name: str, seed: int, rollout: int):
    """The scheduler of one rollout: its own sampling seed, and exploration after the first rollout."""
    scheduler = make_scheduler(scheduler_name, args.num_executors, data_root, scheduler_seed(seed, rollout),
                               args.state_dict_path, device=args.device)
    if rollout > 0 and args.explore > 0:
        scheduler = Exploring(scheduler, args.explore, scheduler_seed(seed, rollout))
    return scheduler


def decision(observer: GraphObserver, observation: dict, info: dict, action: dict, reward: float, done: bool):
    """A step that schedules a stage as the pool stores it: (graph, stage, job, executors - 1, reward, wall
    time, done); None for a step that schedules nothing."""
    if action["stage_idx"] == -1:
        return None
    graph = observer(observation)
    schedulable = np.flatnonzero(graph.stage_mask)
    job = int(np.searchsorted(graph.ptr, schedulable[action["stage_idx"]], side="right") - 1)
    exec_index = min(int(action["num_exec"]), int(graph.exec_caps[job])) - 1
    return graph, int(action["stage_idx"]), job, exec_index, reward, info["wall_time"], done


def play_episode(args: Settings, data_root: Path, scheduler_name: str, seed: int, rollout: int):
    """One episode through the evaluation loop; returns its average JCT and its decisions."""
    torch.set_num_threads(1)
    scheduler = make_rollout_scheduler(args, data_root, scheduler_name, seed, rollout)
    observer, decisions = GraphObserver(args.num_executors), []

    def record(env_id, observation, info, action, reward, done):
        step = decision(observer, observation, info, action, reward, done)
        if step is not None:
            decisions.append(step)

    jobs = run_episodes(make_env_factory(args, data_root), scheduler, [seed], progress=False, on_step=record)
    if decisions:
        decisions[-1] = decisions[-1][:-1] + (True,)
    return average_jct_s(jobs[seed]), decisions


def play_segments(args: Settings, data_root: Path, scheduler_name: str, seed: int):
    """One episode in which every --segment-s of simulated time is the best of --rollouts-per-seed
    continuations from the same state (rollout r's scheduler plays continuation r): the one with the least job
    time in the segment is kept and the episode goes on from where it ended. Returns its average JCT and its
    decisions, as play_episode."""
    torch.set_num_threads(1)
    schedulers = [make_rollout_scheduler(args, data_root, scheduler_name, seed, rollout)
                  for rollout in range(args.rollouts_per_seed)]
    env = make_env_factory(args, data_root)()
    observation, info = env.reset(seed=seed)
    decisions, done = [], False
    while not done:
        start = env.wall_time
        end = start + 1000 * args.segment_s
        continuations = []
        for scheduler in schedulers:
            # a continuation is a new episode to its scheduler and its observer: their caches of job DAGs
            # hold only what one sequence of states has shown (graph_observation.py)
            scheduler.reset()
            branch = env if scheduler is schedulers[-1] else env.fork()  # the last one needs no copy
            steps, observer = [], GraphObserver(args.num_executors)
            branch_observation, branch_info, branch_done = observation, info, False
            while not branch_done and branch.wall_time < end:
                action = scheduler.act(branch_observation)
                next_observation, reward, terminated, truncated, next_info = branch.step(action)
                scheduler.observe(reward)
                branch_done = terminated or truncated
                step = decision(observer, branch_observation, branch_info, action, reward, branch_done)
                if step is not None:
                    steps.append(step)
                branch_observation, branch_info = next_observation, next_info
            continuations.append((branch.job_time_ms(start, end), branch, steps, branch_observation, branch_info,
                                  branch_done))
        _, env, steps, observation, info, done = min(continuations, key=lambda continuation: continuation[0])
        decisions += steps
    if decisions:
        decisions[-1] = decisions[-1][:-1] + (True,)
    jobs = job_records(env, seed)
    return average_jct_s(jobs), decisions


def save_part(folder: Path, episodes: list[dict], own: dict) -> None:
    """One seed's kept episodes, as a pool folder of their decisions (the checkpoint a rerun resumes from)."""
    recorder, episodes = DecisionRecorder(), [episode for episode in episodes if episode["decisions"]]
    for episode in episodes:
        for decision in episode.pop("decisions"):
            recorder.add(*decision)
    recorder.to_pool({"episodes": episodes, "own_avg_jct_s": own}).save(folder)


def resume_or_start(parts: Path, args: Settings, schedulers: list[str]) -> None:
    """The folder of finished seeds: a rerun with the same settings continues from it; other settings are
    refused rather than mixed into one pool."""
    content = {**{k: v for k, v in asdict(args).items() if k not in ("workers", "output")}, "scheds": schedulers}
    recorded = parts / "settings.json"
    if recorded.is_file():
        if json.loads(recorded.read_text()) != content:
            raise InputError(f"{parts} holds the finished seeds of a run with other settings; rerun with those, "
                             "or remove it to start again", "output")
        print(f"resuming from {parts}: {len(list(parts.glob('seed_*')))} seeds done")
    else:
        atomic_write_text(recorded, json.dumps(content, indent=2) + "\n")


def play_seed(args: Settings, data_root: Path, schedulers: list[str], seed: int) -> tuple[list[dict], dict]:
    """Every scheduler's rollouts of one seed (or its episode of selected segments), best (lowest average JCT)
    first, or the best --keep-best of them; and each scheduler's own average JCT on the seed (its first
    rollout, without exploration)."""
    episodes, own = [], {}
    for name in schedulers:
        selecting = name in SAMPLING or args.explore > 0
        if args.segment_s and selecting:
            own[name], _ = play_episode(args, data_root, name, seed, 0)
            jct, decisions = play_segments(args, data_root, name, seed)
            episodes.append({"seed": seed, "scheduler": name, "rollout": "segments", "avg_jct_s": jct,
                             "decisions": decisions})
            continue
        for rollout in range(args.rollouts_per_seed if selecting else 1):
            jct, decisions = play_episode(args, data_root, name, seed, rollout)
            episodes.append({"seed": seed, "scheduler": name, "rollout": rollout, "avg_jct_s": jct,
                             "decisions": decisions})
            if rollout == 0:
                own[name] = jct
    episodes.sort(key=lambda episode: episode["avg_jct_s"])  # stable: ties keep the --scheds order
    return (episodes[:args.keep_best] if args.keep_best else episodes), own


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    schedulers = [s for item in args.scheds for s in item.split(",") if s]
    unknown = [s for s in schedulers if s not in SCHEDULERS]
    if unknown or not schedulers:
        raise InputError(f"unknown scheduler(s) {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(SCHEDULERS)}", "scheds")
    data_root = resolve_data_root(args.data_dir)
    make_env_factory(args, data_root)  # one clear error for bad settings or data, before any work
    for name in schedulers:
        make_scheduler(name, args.num_executors, data_root, 0, args.state_dict_path)
    output = Path(args.output) if args.output else (
        Path("artifacts") / "exp_pool" / args.dataset / args.env_folder_name()
        / "_".join(schedulers) / f"seed_{args.seed}_size_{args.pool_size}{'_complete' * args.complete_episode}")
    if output.exists():
        raise InputError(f"experience pool {output} already exists; remove it or pick another --output")

    parts = output.with_name(output.name + ".partial")
    resume_or_start(parts, args, schedulers)
    pools, kept, own_jcts, seed, total = [], [], [], args.seed, 0
    with ProcessPoolExecutor(max_workers=args.workers) as workers, \
            tqdm(total=args.pool_size, desc="decisions", unit="step") as bar:
        while total < args.pool_size:
            seeds = list(range(seed, seed + args.workers))
            missing = [s for s in seeds if not (parts / f"seed_{s}").is_dir()]
            for s, (episodes, own) in zip(missing, workers.map(play_seed, [args] * len(missing),
                                                                [data_root] * len(missing),
                                                                [schedulers] * len(missing), missing)):
                save_part(parts / f"seed_{s}", episodes, own)
            for s in seeds:
                part = load_pool(parts / f"seed_{s}")
                if total < args.pool_size:
                    own_jcts.append(part.metadata["own_avg_jct_s"])
                for episode, decisions in zip(part.metadata["episodes"], part.episodes()):
                    room = args.pool_size - total
                    if room <= 0:
                        break
                    stop = decisions.stop if args.complete_episode else min(decisions.stop, decisions.start + room)
                    piece = part.decisions(decisions.start, stop)
                    piece.arrays["dones"][-1] = True  # a cut episode still ends
                    pools.append(piece)
                    kept.append(episode)
                    total += len(piece)
                    bar.update(min(room, len(piece)))
            seed += args.workers
    pool = concatenate(pools, {
        "source_schedulers": schedulers, "rollouts_per_seed": args.rollouts_per_seed, "keep_best": args.keep_best,
        "episodes": kept, "pool_avg_jct_s": float(np.mean([e["avg_jct_s"] for e in kept])),
        "scheduler_avg_jct_s": {name: float(np.mean([own[name] for own in own_jcts])) for name in schedulers},
        "dataset": args.dataset,
        "num_executors": args.num_executors, "job_arrival_cap": args.job_arrival_cap,
        "job_arrival_rate": args.job_arrival_rate, "moving_delay": args.moving_delay,
        "warmup_delay": args.warmup_delay, "complete_episode": args.complete_episode, "data_root": str(data_root),
    })
    pool.save(output)
    shutil.rmtree(parts)
    stats = pool.statistics()
    own = ", ".join(f"{name} {jct:.2f} s" for name, jct in pool.metadata["scheduler_avg_jct_s"].items())
    print(f"pool {output}: {stats['num_transitions']} decisions, {stats['num_episodes']} episodes of "
          f"{len(own_jcts)} seeds, average JCT {pool.metadata['pool_avg_jct_s']:.2f} s ({own} on the same seeds), "
          f"reward {stats['reward_min']:.0f}..{stats['reward_max']:.0f}, "
          f"up to {stats['max_schedulable_stages']} schedulable stages")


if __name__ == "__main__":
    main()
