"""The harness: how a ``ganbench run`` is planned, executed and recorded.

- :mod:`~ganbench.harness.plan`: the validated run (names resolved, overrides typed, jobs listed).
- :mod:`~ganbench.harness.job`: one (variant, seed) job, picklable; trains, evaluates and emits events.
- :mod:`~ganbench.harness.executor`: runs jobs (in-process today) and streams their events back.
- :mod:`~ganbench.harness.writer`: the one writer of the run's tables.
- :mod:`~ganbench.harness.rundir`: the run directory's layout, its lock and atomic writes.
- :mod:`~ganbench.harness.trainer`: the training loop shared by every variant.
- :mod:`~ganbench.harness.runner`: ``ganbench.run``, which ties them together.
"""
