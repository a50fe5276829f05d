"""The Spark cluster scheduling environment (the original's `spark_sched_sim/spark_sched_sim.py`), on current gymnasium.

Jobs arrive as a Poisson process; each is a DAG of stages of identical tasks. Executors run tasks; moving
to another job takes `moving_delay` ms and the first task after a move or an idle spell is slower. A
scheduling round starts when executors become free at some *source* pool: the agent is asked, one
decision at a time, which schedulable stage gets how many of the source's uncommitted executors, until
none are left or no stage is schedulable; then the simulation runs to the next round. The reward of a
round is minus the total time (ms) jobs spent in the system during it; the episode ends when every job is
complete. All randomness (arrivals, queries, sizes, task durations) comes from the generator seeded by
`reset(seed=...)`.
"""
import copy
import math

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box, Dict, Discrete, Graph, GraphInstance, Sequence

from common.errors import InputError

from .components import COMMON_POOL, Event, Executor, ExecutorTracker, Job, Stage, Timeline
from .components.timeline import EventType
from .datasets import NUM_QUERIES, JobTemplate
from .task_durations import TaskDurationSampler

NUM_NODE_FEATURES = 3  # remaining tasks, most recent task duration (ms), schedulable now
MAX_STAGES_PER_JOB = 100


class SparkSchedSimEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, templates: dict[str, list[JobTemplate]], num_executors: int = 50,
                 job_arrival_cap: int = 200, job_arrival_rate: float = 4e-5, moving_delay: float = 2000.0,
                 warmup_delay: float = 1000.0, beta: float = 0.0):
        if num_executors < 1:
            raise InputError(f"a cluster needs at least 1 executor, got {num_executors}", "num_executors")
        if job_arrival_cap < 1:
            raise InputError(f"an episode needs at least 1 job, got {job_arrival_cap}", "job_arrival_cap")
        if not job_arrival_rate > 0:
            raise InputError(f"the arrival rate must be positive (jobs per ms), got {job_arrival_rate}",
                             "job_arrival_rate")
        for name, delay in (("moving_delay", moving_delay), ("warmup_delay", warmup_delay)):
            if delay < 0:
                raise InputError(f"a delay must be >= 0 ms, got {delay}", name)
        self.templates = templates
        self.sizes = list(templates)
        self.num_executors = num_executors
        self.job_arrival_cap = job_arrival_cap
        self.mean_interarrival = 1.0 / job_arrival_rate
        self.moving_delay = moving_delay
        self.beta = beta  # continuous discount of the job time in the reward; 0 = undiscounted
        self.durations = TaskDurationSampler(num_executors, warmup_delay)
        self.tracker = ExecutorTracker(num_executors)
        max_stages = job_arrival_cap * MAX_STAGES_PER_JOB
        self.observation_space = Dict({
            # edges carry no data (always 0); gymnasium needs an edge space to accept edge links
            "dag_batch": Graph(node_space=Box(0, np.inf, (NUM_NODE_FEATURES,), dtype=np.float32),
                               edge_space=Discrete(1)),
            "dag_ptr": Sequence(Discrete(max_stages + 1), stack=True),
            "num_committable_execs": Discrete(num_executors + 1),
            "source_job_idx": Discrete(job_arrival_cap + 1),
            "exec_supplies": Sequence(Discrete(2 * num_executors + 1), stack=True),
            "job_ids": Sequence(Discrete(job_arrival_cap), stack=True),
        })
        # the action space follows the round: stage_idx in -1 (none) .. schedulable stages - 1, num_exec in
        # 1 .. committable executors (_observe updates the bounds, so sampled actions are always valid)
        self.action_space = Dict({"stage_idx": Discrete(1, start=-1), "num_exec": Discrete(num_executors, start=1)})

    # ----------------------------------------------------------------------------------------------------
    # gymnasium API

    def reset(self, *, seed=None, options=None):
        """`options={'time_limit': ms}` stops job arrivals at that time (PPO training uses it)."""
        super().reset(seed=seed)
        self.durations.rng = self.np_random
        self.wall_time = 0.0
        self.jobs = self._generate_jobs((options or {}).get("time_limit", math.inf))
        self.timeline = Timeline()
        for job in self.jobs:
            self.timeline.push(job.t_arrival, Event(EventType.JOB_ARRIVAL, {"job": job}))
        self.executors = [Executor(i) for i in range(self.num_executors)]
        self.tracker.reset()
        offsets = np.cumsum([0] + [len(job.stages) for job in self.jobs])
        self.job_offsets = offsets  # index of each job's first stage among all stages
        self.all_edges = np.array([(offsets[job.id] + p, offsets[job.id] + c) for job in self.jobs
                                   for p, c in job.edges], dtype=np.int64).reshape(-1, 2)
        self.active_job_ids: list[int] = []
        self.completed_job_ids: list[int] = []
        self.selected_stages: set = set()
        while not self.timeline.empty and self.timeline.peek()[0] <= 0:
            self._handle_job_arrival(**self.timeline.pop()[1].data)
        self.schedulable_stages = self._find_schedulable_stages()
        return self._observe(), self._info()

    def step(self, action):
        self._take_action(action)
        if self.tracker.num_committable() > 0 and self.schedulable_stages:
            return self._observe(), 0.0, False, False, self._info()  # the round goes on
        self._commit_remaining_executors()
        self._fulfill_commitments_from_source()
        self.tracker.source = None
        self.selected_stages.clear()
        start_time, start_jobs = self.wall_time, list(self.active_job_ids)
        self._resume_simulation()
        reward = -self._job_time(start_time, start_jobs)
        return self._observe(), reward, self.all_jobs_complete, False, self._info()

    # ----------------------------------------------------------------------------------------------------
    # state summaries

    @property
    def all_jobs_complete(self) -> bool:
        return len(self.completed_job_ids) == len(self.jobs)

    def _info(self) -> dict:
        return {"wall_time": self.wall_time}

    def job_time_ms(self, start: float, end: float) -> float:
        """Time that jobs spent in the system between `start` and `end` (at most now), in ms: what that stretch
        of the episode cost (the sum of its rewards, negated, when both are round boundaries)."""
        end = min(end, self.wall_time)
        return sum(max(0.0, min(job.t_completed, end) - max(job.t_arrival, start)) for job in self.jobs)

    def fork(self) -> "SparkSchedSimEnv":
        """An independent copy in the current state, generator included, to try several continuations from
        one state; the read-only job templates and duration tables are shared, not copied."""
        shared = [self.templates] + [stage.durations for job in self.jobs for stage in job.stages]
        return copy.deepcopy(self, {id(item): item for item in shared})

    def job_durations_ms(self) -> list[float]:
        """Time in the system of every job that has arrived (still running jobs: until now)."""
        return [min(self.jobs[j].t_completed, self.wall_time) - self.jobs[j].t_arrival
                for j in self.active_job_ids + self.completed_job_ids]

    def _generate_jobs(self, time_limit: float) -> list[Job]:
        """Arrivals at t = 0 and then exponential gaps, each a uniformly drawn query and size (as the original,
        in the same order of draws, so a seed gives the original's job sequence)."""
        jobs, t = [], 0.0
        while t < time_limit and len(jobs) < self.job_arrival_cap:
            query = 1 + int(self.np_random.integers(NUM_QUERIES))
            size = self.sizes[int(self.np_random.integers(len(self.sizes)))]
            template = self.templates[size][query - 1]
            stages = [Stage(i, len(jobs), n, d, m) for i, (n, d, m) in
                      enumerate(zip(template.num_tasks, template.durations, template.mean_durations))]
            jobs.append(Job(len(jobs), stages, template.edges, t, query, size))
            t += self.np_random.exponential(self.mean_interarrival)
        return jobs

    def _observe(self) -> dict:
        """Node features of all incomplete stages of all active jobs (in arrival, then stage order), edges
        among them, job boundaries and ids, and what the current round has to give."""
        schedulable = set(self.schedulable_stages)
        nodes, ptr, supplies, mask = [], [0], [], np.zeros(int(self.job_offsets[-1]), dtype=bool)
        source_job_idx = len(self.active_job_ids)
        for i, job_id in enumerate(self.active_job_ids):
            job = self.jobs[job_id]
            if job_id == self.tracker.source_job_id():
                source_job_idx = i
            supplies.append(self.tracker.supply[job_id])
            for stage in job.active_stages:
                nodes.append((stage.num_remaining_tasks, stage.most_recent_duration, stage in schedulable))
                mask[self.job_offsets[job_id] + stage.id] = True
            ptr.append(len(nodes))
        self.action_space["stage_idx"] = Discrete(len(self.schedulable_stages) + 1, start=-1)
        self.action_space["num_exec"] = Discrete(max(1, self.tracker.num_committable()), start=1)
        edges = self.all_edges[mask[self.all_edges[:, 0]] & mask[self.all_edges[:, 1]]]
        renumber = np.cumsum(mask) - 1
        return {
            "dag_batch": GraphInstance(np.array(nodes, dtype=np.float32).reshape(-1, NUM_NODE_FEATURES),
                                       np.zeros(len(edges), dtype=np.int64),
                                       renumber[edges].astype(np.int64).reshape(-1, 2)),
            "dag_ptr": np.array(ptr, dtype=np.int64),
            "num_committable_execs": self.tracker.num_committable(),
            "source_job_idx": source_job_idx,
            "exec_supplies": np.array(supplies, dtype=np.int64),
            "job_ids": np.array(self.active_job_ids, dtype=np.int64),
        }

    def _job_time(self, start_time: float, start_jobs: list[int]) -> float:
        if self.wall_time == start_time:
            return 0.0
        total = 0.0
        for job_id in set(start_jobs) | set(self.active_job_ids):
            job = self.jobs[job_id]
            start, end = max(job.t_arrival, start_time), min(job.t_completed, self.wall_time)
            if self.beta == 0:
                total += end - start
            else:
                total += (math.exp(-self.beta * 1e-3 * (start - start_time))
                          - math.exp(-self.beta * 1e-3 * (end - start_time))) / self.beta
        return total

    # ----------------------------------------------------------------------------------------------------
    # decisions

    def _take_action(self, action) -> None:
        stage_idx, num_exec = int(action["stage_idx"]), int(action["num_exec"])
        if stage_idx == -1:
            self._commit_remaining_executors()
            return
        if not 0 <= stage_idx < len(self.schedulable_stages):
            raise ValueError(f"stage_idx {stage_idx} is not one of the {len(self.schedulable_stages)} "
                             "schedulable stages")
        if not 1 <= num_exec <= self.tracker.num_committable():
            raise ValueError(f"num_exec {num_exec} is outside 1..{self.tracker.num_committable()}")
        stage = self.schedulable_stages[stage_idx]
        self.tracker.add_commitment(min(num_exec, self._demand(stage)), stage.pool_key)
        self.selected_stages.add(stage)
        # the chosen job's schedulable stages may have changed; the others' have not
        job_ids = [s.job_id for s in self.schedulable_stages]
        first = job_ids.index(stage.job_id)
        last = len(job_ids) - job_ids[::-1].index(stage.job_id)
        self.schedulable_stages[first:last] = self._find_schedulable_stages([stage.job_id])

    def _commit_remaining_executors(self) -> None:
        """Uncommitted executors of the source go to the common pool when released."""
        if self.tracker.num_committable() > 0:
            self.tracker.add_commitment(self.tracker.num_committable(), COMMON_POOL)

    def _demand(self, stage: Stage) -> int:
        """Executors a stage can still use beyond those working on, moving to or committed to it."""
        key = stage.pool_key
        return stage.num_remaining_tasks - (self.tracker.num_moving_to[key] + self.tracker.num_commitments_to[key])

    def _is_ready(self, stage: Stage) -> bool:
        """Unsaturated, with every parent saturated."""
        job = self.jobs[stage.job_id]
        return self._demand(stage) > 0 and all(self._demand(job.stages[p]) <= 0 for p in job.parents[stage.id])

    def _find_schedulable_stages(self, job_ids=None, source_job_id="current") -> list[Stage]:
        """Ready stages not selected this round, of jobs that can take more executors (the source job always can)."""
        job_ids = self.active_job_ids if job_ids is None else job_ids
        source_job_id = self.tracker.source_job_id() if source_job_id == "current" else source_job_id
        return [stage for job_id in job_ids
                if job_id == source_job_id or self.tracker.supply[job_id] < self.num_executors
                for stage in self.jobs[job_id].active_stages
                if stage not in self.selected_stages and self._is_ready(stage)]

    # ----------------------------------------------------------------------------------------------------
    # the event loop

    def _resume_simulation(self) -> None:
        """Run events until executors are free and some stage can take them (or nothing is left)."""
        schedulable = []
        while not self.timeline.empty:
            self.wall_time, event = self.timeline.pop()
            {EventType.JOB_ARRIVAL: self._handle_job_arrival, EventType.EXECUTOR_ARRIVAL: self._handle_executor_arrival,
             EventType.TASK_COMPLETION: self._handle_task_completion}[event.type](**event.data)
            if self.tracker.num_committable() == 0:
                continue
            schedulable = self._find_schedulable_stages()
            if schedulable:
                break
            self._move_idle_executors()
            self.tracker.source = None
        self.schedulable_stages = schedulable

    def _handle_job_arrival(self, job: Job) -> None:
        self.active_job_ids.append(job.id)
        self.tracker.add_job(job.id)
        for stage in job.stages:
            self.tracker.add_stage(stage.pool_key)
        if self.tracker.pools[COMMON_POOL]:  # free executors could go to the new job: a round at the common pool
            self.tracker.source = COMMON_POOL

    def _handle_executor_arrival(self, executor: Executor, stage: Stage) -> None:
        job = self.jobs[stage.job_id]
        job.local_executors.add(executor.id)
        executor.job_id = job.id
        self.tracker.count_arrival(stage.pool_key)
        self.tracker.move(executor.id, job.pool_key)
        self._move_executor_to_stage(executor, stage)

    def _handle_task_completion(self, stage: Stage, executor: Executor) -> None:
        job = self.jobs[stage.job_id]
        stage.complete_task()
        executor.is_executing = False
        if stage.num_remaining_tasks > 0:
            self._execute_next_task(executor, stage)
            return
        frontier_changed = job.add_stage_completion(stage) if stage.completed else False
        if job.completed:
            self._process_job_completion(job)
        had_commitment = self._handle_released_executor(executor, stage, frontier_changed)
        if frontier_changed:
            self.tracker.source = stage.job_pool_key  # new stages: a round at the job
        elif not had_commitment:
            self.tracker.source = stage.pool_key  # the executor has nowhere to go: a round at the stage

    def _process_job_completion(self, job: Job) -> None:
        if self.tracker.pools[job.pool_key]:
            self._move_idle_executors(job.pool_key)
        self.active_job_ids.remove(job.id)
        self.completed_job_ids.append(job.id)
        job.t_completed = self.wall_time

    def _handle_released_executor(self, executor: Executor, stage: Stage, frontier_changed: bool) -> bool:
        destination = self.tracker.peek_commitment(stage.pool_key)
        if destination is not None:
            self._fulfill_commitment(executor.id, destination)
            return True
        executor.task_stage = None  # nowhere to go: idle
        if frontier_changed:
            self._move_idle_executors(stage.pool_key, [executor.id])
        return False

    # ----------------------------------------------------------------------------------------------------
    # moving executors

    def _execute_next_task(self, executor: Executor, stage: Stage) -> None:
        job = self.jobs[stage.job_id]
        stage.start_task()
        if stage.num_remaining_tasks == 0:
            job.saturated_stage_count += 1
        duration = self.durations.sample(stage.durations, len(job.local_executors), executor.is_idle,
                                         executor.task_stage == stage.pool_key)
        executor.task_stage, executor.is_executing = stage.pool_key, True
        stage.most_recent_duration = duration
        self.timeline.push(self.wall_time + duration,
                           Event(EventType.TASK_COMPLETION, {"stage": stage, "executor": executor}))

    def _send_executor(self, executor: Executor, stage: Stage) -> None:
        self.tracker.move(executor.id, stage.pool_key, send=True)
        if executor.job_id is not None:
            self._leave_job(executor)
        self.timeline.push(self.wall_time + self.moving_delay,
                           Event(EventType.EXECUTOR_ARRIVAL, {"executor": executor, "stage": stage}))

    def _leave_job(self, executor: Executor) -> None:
        self.jobs[executor.job_id].local_executors.remove(executor.id)
        executor.job_id, executor.task_stage = None, None

    def _fulfill_commitment(self, executor_id: int, destination: tuple) -> None:
        source = self.tracker.remove_commitment(executor_id, destination)
        if destination == COMMON_POOL:
            self._move_idle_executors(source, [executor_id])
            return
        job_id, stage_id = destination
        self._move_executor_to_stage(self.executors[executor_id], self.jobs[job_id].stages[stage_id])

    def _idle_executors_at(self, pool: tuple) -> list[int]:
        return [e for e in sorted(self.tracker.pools[pool]) if not self.executors[e].is_executing]

    def _fulfill_commitments_from_source(self) -> None:
        idle = self._idle_executors_at(self.tracker.source)
        for destination, count in list(self.tracker.commitments[self.tracker.source].items()):
            for _ in range(count):
                if not idle:
                    return
                self._fulfill_commitment(idle.pop(0), destination)

    def _move_idle_executors(self, pool: tuple | None = None, executor_ids: list[int] | None = None) -> None:
        """Idle executors at a stage go to their job's pool; at a saturated job, to the common pool."""
        pool = self.tracker.source if pool is None else pool
        if pool is None or pool == COMMON_POOL:
            return
        executor_ids = self._idle_executors_at(pool) if executor_ids is None else executor_ids
        job_id, stage_id = pool
        job_saturated = self.jobs[job_id].saturated
        if stage_id is None and not job_saturated:
            return
        destination = COMMON_POOL if job_saturated else (job_id, None)
        for executor_id in executor_ids:
            self.tracker.move(executor_id, destination)
            if destination == COMMON_POOL:
                self._leave_job(self.executors[executor_id])

    def _move_executor_to_stage(self, executor: Executor, stage: Stage) -> None:
        if stage.num_remaining_tasks == 0:  # no longer needed there: find it another stage
            backup = self._find_backup_stage(executor)
            if backup is not None:
                self._move_executor_to_stage(executor, backup)
            else:
                self._move_idle_executors(self.tracker.locations[executor.id], [executor.id])
            return
        if executor.job_id != stage.job_id:
            self._send_executor(executor, stage)
            return
        job = self.jobs[stage.job_id]
        if stage not in job.frontier_stages:  # not runnable yet: wait, idle, at the job
            executor.task_stage = None
            self.tracker.move(executor.id, stage.job_pool_key)
            return
        self.tracker.move(executor.id, stage.pool_key)
        self._execute_next_task(executor, stage)

    def _find_backup_stage(self, executor: Executor) -> Stage | None:
        """The last schedulable stage of the executor's job, else of the other jobs (as the original)."""
        source_job_id = "current" if executor.job_id is None else executor.job_id
        if executor.job_id is not None:
            local = self._find_schedulable_stages([executor.job_id], source_job_id)
            if local:
                return local[-1]
        others = [j for j in self.active_job_ids if j != executor.job_id]
        other = self._find_schedulable_stages(others, source_job_id)
        return other[-1] if other else None
