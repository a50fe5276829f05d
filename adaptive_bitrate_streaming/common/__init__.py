"""Infrastructure shared by the two task trees, identical in both: user-facing errors and atomic writes."""
