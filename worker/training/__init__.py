"""Training: one SFT, DPO or reward-model run over a built dataset folder, with TRL's trainers.

Plain functions with injected callbacks: no Celery, FastAPI or SQL, so the worker, a CLI and the
tests call the same `train_model`.
"""
