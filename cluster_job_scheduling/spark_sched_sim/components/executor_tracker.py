"""Where every executor is, where it has been promised to go, and how many executors each job can count on.

Pools: the common pool (executors at no job), a job pool (idle executors at a job) and a stage pool (the
executors working for a stage). A scheduling round hands out the uncommitted executors of one *source*
pool: each decision commits some of them to a stage; commitments are fulfilled when the executors are free.
"""
COMMON_POOL = (None, None)


class ExecutorTracker:
    def __init__(self, num_executors: int):
        self.num_executors = num_executors

    def reset(self) -> None:
        self.locations = {e: COMMON_POOL for e in range(self.num_executors)}  # executor -> pool (None: moving)
        self.pools = {None: set(), COMMON_POOL: set(range(self.num_executors))}
        self.commitments = {None: {}, COMMON_POOL: {}}  # source pool -> {destination pool: count}, ordered
        self.num_commitments_from = {None: 0, COMMON_POOL: 0}
        self.num_commitments_to = {COMMON_POOL: 0}
        self.num_moving_to = {}  # stage pool -> executors on their way
        self.supply = {None: 0}  # job -> executors at, moving to or committed to it from elsewhere
        self.source = COMMON_POOL

    def add_job(self, job_id: int) -> None:
        key = (job_id, None)
        self.pools[key], self.commitments[key], self.num_commitments_from[key] = set(), {}, 0
        self.supply[job_id] = 0

    def add_stage(self, key: tuple) -> None:
        self.pools[key], self.commitments[key] = set(), {}
        self.num_commitments_from[key] = self.num_commitments_to[key] = self.num_moving_to[key] = 0

    def source_job_id(self) -> int | None:
        return None if self.source in (None, COMMON_POOL) else self.source[0]

    def num_committable(self) -> int:
        return len(self.pools[self.source]) - self.num_commitments_from[self.source]

    def add_commitment(self, num_executors: int, destination: tuple) -> None:
        commitments = self.commitments[self.source]
        commitments[destination] = commitments.get(destination, 0) + num_executors
        self.num_commitments_from[self.source] += num_executors
        self.num_commitments_to[destination] += num_executors
        if destination[0] != self.source[0]:
            self.supply[destination[0]] += num_executors

    def remove_commitment(self, executor_id: int, destination: tuple) -> tuple:
        """One executor fulfils one commitment of its pool; returns that (source) pool."""
        source = self.locations[executor_id]
        self.commitments[source][destination] -= 1
        if self.commitments[source][destination] == 0:
            del self.commitments[source][destination]
        self.num_commitments_from[source] -= 1
        self.num_commitments_to[destination] -= 1
        if destination[0] != source[0]:
            self.supply[destination[0]] -= 1
        return source

    def peek_commitment(self, pool: tuple) -> tuple | None:
        return next(iter(self.commitments[pool]), None)

    def count_arrival(self, stage_key: tuple) -> None:
        self.num_moving_to[stage_key] -= 1

    def move(self, executor_id: int, pool: tuple, send: bool = False) -> None:
        """Put an executor into `pool`, or with `send` start moving it there (it arrives after a delay)."""
        old = self.locations[executor_id]
        if old is not None:
            self.pools[old].remove(executor_id)
            self.locations[executor_id] = None
        if not send:
            self.locations[executor_id] = pool
            self.pools[pool].add(executor_id)
            return
        self.num_moving_to[pool] += 1
        self.supply[pool[0]] += 1
        if old is not None and old[0] is not None:
            self.supply[old[0]] -= 1
