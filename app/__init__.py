"""The CAI workbench web application. Never imports torch, transformers or trl."""
