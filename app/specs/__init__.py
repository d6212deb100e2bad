"""One typed spec per job kind: what a stage is asked to do, with types, bounds and defaults.

Torch-free and web-free, so the web app (forms), the CLI (flags) and the worker (job rows)
share one definition. A job stores `spec.to_parameters()`; the worker calls
`Spec.from_parameters(job.parameters)` once and passes the typed object on.
"""

from app.specs.base import SpecError, StageSpec

__all__ = ["SpecError", "StageSpec"]
