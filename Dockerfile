FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app app
COPY worker worker
COPY templates templates
COPY static static
COPY migrations migrations
COPY alembic.ini ./
# Images for GPU hosts take PyTorch's CUDA build from the default index.
RUN pip install --no-cache-dir -e '.[team]'
EXPOSE 8000
CMD ["cai", "web", "--host", "0.0.0.0"]
