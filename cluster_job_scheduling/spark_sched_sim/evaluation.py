"""The evaluation loop: any Scheduler, over episodes (one per seed), several environments side by side."""
from collections.abc import Callable

from tqdm import tqdm

from .env import SparkSchedSimEnv

JOB_COLUMNS = ["seed", "job_id", "query", "size", "arrival_s", "completion_s", "duration_s"]


def job_records(env: SparkSchedSimEnv, seed: int) -> list[dict]:
    records = []
    for job_id in sorted(env.active_job_ids + env.completed_job_ids):
        job = env.jobs[job_id]
        end = min(job.t_completed, env.wall_time)
        records.append({"seed": seed, "job_id": job_id, "query": job.query, "size": job.size,
                        "arrival_s": job.t_arrival / 1000, "completion_s": end / 1000,
                        "duration_s": (end - job.t_arrival) / 1000})
    return records


def run_episodes(make_env: Callable[[], SparkSchedSimEnv], scheduler, seeds: list[int], num_envs: int = 1,
                 progress: bool = True, on_step=None) -> dict[int, list[dict]]:
    """Run one episode per seed (environment seed = `seed`), `num_envs` at a time; the scheduler decides for
    all running environments in one `act_batch` call. Returns the job records of each seed.

    `on_step(env_id, observation, info, action, reward, done)` sees every transition: the observation and
    the info that came with it, the action taken, its reward and whether the episode ended (pool collection).
    """
    envs = [make_env() for _ in range(min(num_envs, len(seeds)))]
    pending, running, results = list(seeds), {}, {}
    total_jobs = envs[0].job_arrival_cap * len(seeds)
    with tqdm(total=total_jobs, desc=scheduler.name, unit="job", disable=not progress) as bar:
        while pending or running:
            for env_id in range(len(envs)):
                if env_id not in running and pending:
                    seed = pending.pop(0)
                    scheduler.reset(env_id)
                    observation, info = envs[env_id].reset(seed=seed)
                    running[env_id] = (seed, observation, info, 0)
            env_ids = sorted(running)
            actions = scheduler.act_batch([running[e][1] for e in env_ids], env_ids)
            for env_id, action in zip(env_ids, actions):
                seed, observation, info, completed = running[env_id]
                env = envs[env_id]
                next_observation, reward, terminated, truncated, next_info = env.step(action)
                scheduler.observe(reward, env_id)
                if on_step is not None:
                    on_step(env_id, observation, info, action, reward, terminated or truncated)
                bar.update(len(env.completed_job_ids) - completed)
                if terminated or truncated:
                    results[seed] = job_records(env, seed)
                    del running[env_id]
                else:
                    running[env_id] = (seed, next_observation, next_info, len(env.completed_job_ids))
    return {seed: results[seed] for seed in seeds}
