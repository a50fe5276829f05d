"""An executor: a worker that runs one task at a time and must move (with a delay) to work for another job."""
from dataclasses import dataclass


@dataclass(eq=False)
class Executor:
    id: int
    job_id: int | None = None  # the job it is local to, if any
    task_stage: tuple | None = None  # pool key of the stage of its current or just-finished task; None = idle
    is_executing: bool = False

    @property
    def is_idle(self) -> bool:
        """Idle executors (fresh at a stage, or just moved between jobs) need to warm up."""
        return self.task_stage is None
