"""Reporting: collect run directories, select settings, aggregate seeds, write paper tables and figures.

One responsibility per module:
  tasks        GLUE task metadata (main metric, display name, test-set size, GLUE server file names)
  collect      scan ``<results_dir>/runs/**`` into one pandas table (+ sweep choices)
  selection    best/last epoch score and the chosen setting per (task, method, rank)
  statistics   mean/median/sd/n, 95% CIs (t, normal, bootstrap), Bernoulli test half-width, Welch
  published    the published numbers and the GLUE test-score CSV
  presets      each paper's table layout and which runs/published rows fill it
  build        assemble a preset's long table, display table and comparison
  tables       Markdown / CSV / LaTeX (booktabs) writers
  figures      SymLoRA Figure 1 (layer norms) and the per-task bar chart
  submission   the GLUE submission zip
  runner       orchestration used by ``report.py``
"""
