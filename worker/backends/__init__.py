"""Text generation and scoring backends behind one small interface (see base.py)."""
