"""A stage: a set of identical tasks of one job; it becomes runnable when its parent stages are complete."""
from dataclasses import dataclass, field


@dataclass(eq=False)
class Stage:
    id: int
    job_id: int
    num_tasks: int
    durations: dict  # {'first_wave' | 'fresh_durations' | 'rest_wave': {executor count: [ms, ...]}}
    most_recent_duration: float  # ms; starts at the mean of every recorded duration
    num_remaining_tasks: int = field(init=False)
    num_processing_tasks: int = 0
    num_completed_tasks: int = 0

    def __post_init__(self):
        self.num_remaining_tasks = self.num_tasks

    @property
    def pool_key(self) -> tuple:
        return (self.job_id, self.id)

    @property
    def job_pool_key(self) -> tuple:
        return (self.job_id, None)

    @property
    def completed(self) -> bool:
        return self.num_completed_tasks == self.num_tasks

    def start_task(self) -> None:
        self.num_remaining_tasks -= 1
        self.num_processing_tasks += 1

    def complete_task(self) -> None:
        self.num_processing_tasks -= 1
        self.num_completed_tasks += 1
