"""Type hints of the `lpc` module (built from src/lib.rs; docs/python.md describes it)."""

import os
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

__version__: str

Path = Union[str, os.PathLike]
Arrays = Union[np.ndarray, Mapping[str, np.ndarray], Sequence[np.ndarray]]
Data = Union[Path, Arrays, Iterable[Arrays]]
Value = tuple[str, str | None, list[int | str] | None]  # name, dtype, shape (symbolic dims by name)

class LpcError(Exception): ...

class BudgetError(LpcError):
    model: QuantizedModel

class Model:
    def save(self, path: Path) -> None: ...
    @property
    def inputs(self) -> list[Value]: ...
    @property
    def outputs(self) -> list[Value]: ...

class QuantizedModel(Model):
    @property
    def report(self) -> dict[str, Any]: ...
    @property
    def summary(self) -> str: ...
    @property
    def log(self) -> list[str]: ...

class Compiled:
    def __call__(self, *inputs: Union[np.ndarray, Mapping[str, np.ndarray]]) -> Union[list[np.ndarray], dict[str, np.ndarray]]: ...
    def time_runs(self, *inputs: Union[np.ndarray, Mapping[str, np.ndarray]], runs: int = 100) -> list[float]: ...
    @property
    def input_names(self) -> list[str]: ...
    @property
    def output_names(self) -> list[str]: ...
    @property
    def input_shapes(self) -> list[list[int]]: ...
    @property
    def stats(self) -> str: ...

def quantize(
    model_path: Path,
    calibration: Data | None = None,
    *,
    data: Data | None = None,
    labels: Union[Path, np.ndarray, None] = None,
    **options: Any,
) -> QuantizedModel: ...
def compile(
    model: Union[Path, Model],
    shapes: Union[Mapping[str, Sequence[int]], Sequence[Sequence[int]], None] = None,
    *,
    threads: int | None = None,
    isa: str = "auto",
    fold: bool = True,
) -> Compiled: ...
def fold(model: Union[Path, Model], out_path: Path | None = None, **options: Any) -> Model: ...
def accuracy(
    model: Union[Path, Model],
    data: Data,
    labels: Union[Path, np.ndarray, None] = None,
    reference: Union[Path, Model, None] = None,
    **options: Any,
) -> dict[str, Any]: ...
