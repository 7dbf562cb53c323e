"""The self-check: the whole pipeline once on a device (CUDA or, shrunk, the CPU), one summary table.

``tools/selfcheck.py`` is its command line. Each step runs its work in child processes, so one that fails or hangs
leaves the others their measurement; the parent only asks torch how many GPUs exist and reads files (no CUDA
context: the children own the GPU).

  plan        what each step does: sizes for a GPU (``full_plan``) or a CPU (``quick_plan``), the options
  context     what the steps share: the work folder, the child processes, the checkpoint eval and predict use
  processes   child processes in their own process groups, their logs, the one line that says why one failed
  readings    what runs left behind: ``log.jsonl`` (rates, the trainer's setup and peak memory), checkpoints
  report      the summary table and the JSON report
  runner      the steps in order, within the budget and each step's cap
  steps/      one module per step: data, train, eval, predict, resume, ddp
  children/   the child processes' entry points, ``python -m segkit.selfcheck.children.<name> --flag value``
              (training runs tools/train.py itself)
"""
