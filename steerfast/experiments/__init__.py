"""The papers' experiments, as the CLI runs them: `sadi` (`steerfast sadi-eval`: SADI vs its
baselines on multiple-choice tasks), `laai` (`steerfast laai-eval`: LAAI vs zero-shot, ICL and
CAA on the function-vector tasks) and `heatmap` (SADI's per-head scores, paper Fig. 3)."""
