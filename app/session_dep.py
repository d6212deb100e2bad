"""The web app's database session: one per request, as a FastAPI dependency. Apart from
app/db.py so that the worker, which needs the engine, does not import FastAPI with it."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from app.db import get_engine


def get_session() -> Iterator[Session]:
    with Session(get_engine()) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
