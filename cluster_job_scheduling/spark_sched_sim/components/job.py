"""A job: a DAG of stages (a TPC-H query at some input size) that arrives at some time."""
import math

from .stage import Stage


class Job:
    def __init__(self, id: int, stages: list[Stage], edges: list[tuple[int, int]], t_arrival: float, query: int,
                 size: str):
        self.id = id
        self.stages = stages
        self.edges = edges  # (parent stage, child stage): the parent must complete before the child runs
        self.parents = [[] for _ in stages]
        self.children = [[] for _ in stages]
        for parent, child in edges:
            self.parents[child].append(parent)
            self.children[parent].append(child)
        self.t_arrival = t_arrival
        self.t_completed = math.inf
        self.query, self.size = query, size
        self.active_stages = list(stages)  # incomplete stages, in stage order
        self.frontier_stages = {s for s in stages if not self.parents[s.id]}  # incomplete, parents complete
        self.local_executors: set[int] = set()
        self.saturated_stage_count = 0  # stages with no task left to start

    @property
    def pool_key(self) -> tuple:
        return (self.id, None)

    @property
    def completed(self) -> bool:
        return not self.active_stages

    @property
    def saturated(self) -> bool:
        return self.saturated_stage_count == len(self.stages)

    def add_stage_completion(self, stage: Stage) -> bool:
        """Mark a stage complete; returns whether new stages became runnable."""
        self.active_stages.remove(stage)
        self.frontier_stages.discard(stage)
        new = {self.stages[c] for c in self.children[stage.id]
               if not self.stages[c].completed and all(self.stages[p].completed for p in self.parents[c])}
        self.frontier_stages |= new
        return bool(new)
