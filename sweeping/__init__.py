"""sweep.py's logic: a grid of runs, two stages, MNLI dependencies, resume, launching through Hydra.

One responsibility per module:

* ``grid``         -- the grid file (``configs/grid/*.yaml``) -> groups of runs; which command-line
                      overrides pass through to every run
* ``identity``     -- a run's configuration and directory (the run directory of docs/run_directory.md),
                      composed exactly as ``python train.py <overrides>`` would, and its status on disk
* ``stages``       -- the search stage's choice (best mean validation score) and the stage records
                      (``search.json``, ``replicate.json``, ``choices.json`` under ``sweeps/<grid>/``)
* ``dependencies`` -- which runs start from which MNLI run, and the order groups are planned in
* ``plan``         -- every run of the sweep with its state (done, failed, todo, blocked, pending)
* ``estimate``     -- examples per run and GPU-hours; ``dry_run`` -- what ``dry_run=true`` prints
* ``progress``     -- one line per finished run
* ``job``          -- the task function a launcher runs (training.run.run, plus a GPU pool)
* ``launch``       -- one wave of runs through the Hydra launcher ``hydra/launcher`` names
* ``cli``          -- sweep.py's Hydra app: load the grid, plan, estimate, launch in waves
"""
