"""One module per self-check step; each has ``run(check, step, deadline)``, which fills ``step`` or raises
``StepFailed``."""
