//! `lpc` for Python: the verbs of the `lpc` command line as functions on numpy arrays.
//!
//! Every verb here calls the same library function as the CLI (`lpc_cli::cmd::*`), with the
//! CLI's options parsed from keyword arguments by the CLI's own clap definitions
//! ([`options`]), so defaults, checks and messages are the CLI's. Python only hands data in and
//! out ([`arrays`]); nothing of lpc's work runs in Python.

mod arrays;
mod options;

use arrays::{samples, tensor_of, to_numpy, Data};
use lpc_cli::cmd::accuracy::{measure, AccuracyJob, AccuracyOptions};
use lpc_cli::cmd::fold::{fold_model, FoldRules};
use lpc_cli::cmd::quantize::{
    eval_options, quantize_model, write_quantized, QuantizeData, QuantizeOptions,
};
use lpc_cli::jit::jit_compile_shapes;
use lpc_cli::outputs::{write_model, Files, Format};
use lpc_cli::runtime::{prepare, FoldArg};
use lpc_ir::{Graph, Tensor};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use pyo3::IntoPyObjectExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

create_exception!(
    lpc,
    LpcError,
    PyException,
    "An error of lpc (bad model, data or options): the message the `lpc` command line prints."
);
create_exception!(
    lpc,
    BudgetError,
    LpcError,
    "No model met the accuracy budget of `lpc.quantize(max_drop=...|min_sqnr=...)`; `.model` is \
     the best one found (what the command line writes before it fails)."
);

/// An lpc error as a Python exception: the message the CLI prints after `error: `.
fn lpc_err(e: anyhow::Error) -> PyErr {
    LpcError::new_err(format!("{e:#}"))
}

/// Runs `f`, turning a panic (a bug in lpc) into an [`LpcError`] instead of Python's
/// `PanicException`, which `except Exception` does not catch.
fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(LpcError::new_err(format!(
            "internal error (a bug in lpc, please report it): {msg}"
        )))
    })
}

/// Progress bars on stderr when it is a terminal, as the CLI.
fn progress() -> bool {
    lpc_cli::threads::progress_bar()
}

/// A model in memory: the graph lpc read from a file, quantized or folded.
#[pyclass(subclass, frozen, module = "lpc")]
struct Model {
    graph: Graph,
    /// The file it came from (named in messages; `save` never writes over it).
    source: PathBuf,
}

impl Model {
    /// Refuses to write `path` over the model's source files (as the CLI's outputs).
    fn check_output(&self, flag: &str, path: &Path) -> anyhow::Result<()> {
        Files::default()
            .model("the model", &self.source)
            .output(flag, path)
    }
}

#[pymethods]
impl Model {
    /// Writes the model: `.onnx` (QDQ ONNX, as `lpc quantize -o`) or `.lir` (lpc's graph text).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        guard(|| {
            self.check_output("path", &path)
                .and_then(|()| write_quantized(&self.graph, "path", &path))
                .map_err(lpc_err)
        })
    }

    /// The model's inputs: (name, dtype, shape) each, symbolic dims by name.
    #[getter]
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let g = &self.graph;
        describe(py, g, &mut g.inputs().iter().map(|&n| (n, 0)))
    }

    /// The model's outputs: (name, dtype, shape) each.
    #[getter]
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let g = &self.graph;
        describe(py, g, &mut g.outputs().iter().map(|v| (v.node, v.output)))
    }

    fn __repr__(&self) -> String {
        format!(
            "<lpc.Model from {} with {} nodes>",
            self.source.display(),
            self.graph.node_ids().len()
        )
    }
}

/// The graph values `vs` (node, output index).
type Values<'a> = &'a mut dyn Iterator<Item = (lpc_ir::NodeId, usize)>;

/// Each value as a tuple: name, dtype (numpy's name; None when unknown) and shape (ints,
/// symbolic dims by name; None when the rank is unknown).
fn describe<'py>(py: Python<'py>, g: &Graph, vs: Values) -> PyResult<Vec<Bound<'py, PyTuple>>> {
    vs.map(|(n, k)| {
        let o = &g.node(n).outputs[k];
        let dtype = o.ty.dtype.map(arrays::numpy_name);
        let shape = match &o.ty.shape {
            None => None,
            Some(s) => Some(
                s.0.iter()
                    .map(|d| match d {
                        lpc_ir::Dim::Known(k) => k.into_bound_py_any(py),
                        lpc_ir::Dim::Sym(s) => s.into_bound_py_any(py),
                    })
                    .collect::<PyResult<Vec<_>>>()?,
            ),
        };
        (o.name.as_str(), dtype, shape).into_pyobject(py)
    })
    .collect()
}

/// The names of the values `vs`.
fn names(g: &Graph, vs: Values) -> Vec<String> {
    vs.map(|(n, k)| g.node(n).outputs[k].name.clone()).collect()
}

/// A quantized model: `save("x.onnx")` writes the QDQ ONNX that `lpc quantize -o x.onnx`
/// writes; `report` is the `--report` JSON as a dict.
#[pyclass(extends = Model, frozen, module = "lpc")]
struct QuantizedModel {
    report: Py<PyAny>,
    summary: String,
    log: Vec<String>,
}

#[pymethods]
impl QuantizedModel {
    /// The JSON report `lpc quantize --report` writes (ranges, layers, SQNR, times; with a
    /// budget, the search under "accuracy_aware"), as a dict.
    #[getter]
    fn report(&self, py: Python<'_>) -> Py<PyAny> {
        self.report.clone_ref(py)
    }

    /// The summary `lpc quantize` prints.
    #[getter]
    fn summary(&self) -> &str {
        &self.summary
    }

    /// With a budget: the search's steps, as `lpc quantize` prints them while it runs.
    #[getter]
    fn log(&self) -> Vec<String> {
        self.log.clone()
    }
}

/// A model path (str or os.PathLike) or a [`Model`]: its graph and the file it came from.
fn model_of(obj: &Bound<'_, PyAny>) -> PyResult<(Graph, PathBuf)> {
    if let Ok(m) = obj.cast::<Model>() {
        let m = m.get();
        return Ok((m.graph.clone(), m.source.clone()));
    }
    let path: PathBuf = obj.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a model path (str or os.PathLike) or an lpc.Model, got {}",
            type_name(obj)
        ))
    })?;
    let g = obj
        .py()
        .detach(|| lpc_load::load_model(&path))
        .map_err(|e| lpc_err(e.into()))?;
    Ok((g, path))
}

/// The Python type name of `obj`, for messages.
fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map_or("?".into(), |n| n.to_string())
}

/// `lpc.quantize(model_path, calibration, **options)`: `lpc quantize`.
///
/// `calibration`: a numpy array (one input; samples stacked on axis 0), a dict of arrays by
/// input name, an iterable of either (a data loader: its samples or batches are stacked), or a
/// path as `--calib` takes. `data`/`labels` (evaluation set of a budget search, or of `--mode
/// dynamic`) are the same kinds. Other keywords are `lpc quantize`'s flags with `_` for `-`
/// (`preset="performance"`, `ignore=["Conv_3"]`, `max_drop=0.5`, `no_bias_correction=True`).
#[pyfunction]
#[pyo3(signature = (model_path, calibration=None, *, data=None, labels=None, **options))]
fn quantize(
    py: Python<'_>,
    model_path: PathBuf,
    calibration: Option<&Bound<'_, PyAny>>,
    data: Option<&Bound<'_, PyAny>>,
    labels: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<QuantizedModel>> {
    guard(|| {
        let mut o: QuantizeOptions = options::parse(
            "quantize",
            &[model_path.as_os_str()],
            options,
            &["calib", "data", "labels", "report"],
        )?;
        let g = py
            .detach(|| lpc_load::load_model(&model_path))
            .map_err(|e| lpc_err(e.into()))?;
        let calib = calibration
            .map(|c| Data::of(c, "calibration"))
            .transpose()?;
        let eval = data.map(|d| Data::of(d, "data")).transpose()?;
        // Paths go to the CLI's readers as --calib/--data/--labels; arrays are opened here.
        if let Some(Data::Path(p)) = &calib {
            o.q.calib = vec![p.clone()];
        }
        if let Some(Data::Path(p)) = &eval {
            o.budget.eval = Some(p.clone());
        }
        let label_arr = match labels {
            Some(l) if !is_path(l) => Some(l),
            Some(l) => {
                o.budget.labels = Some(l.extract()?);
                None
            }
            None => None,
        };
        let mut qd = py.detach(|| QuantizeData::open(&o, &g)).map_err(lpc_err)?;
        if let Some(Data::Arrays(a)) = calib {
            let opts = o.q.data.options(true).map_err(lpc_err)?;
            qd.calib = Some(samples(a, &g, &opts, "calibration data")?);
        }
        if let Some(Data::Arrays(a)) = eval {
            let opts = eval_options(&o).map_err(lpc_err)?;
            qd.eval = Some(samples(a, &g, &opts, "evaluation data (data)")?);
        }
        if let Some(l) = label_arr {
            qd.labels = Some(arrays::labels(l)?);
        }
        let mut log = vec![];
        let out = py
            .detach(|| quantize_model(&o, &g, &qd, progress(), &mut |l| log.push(l.to_string())))
            .map_err(lpc_err)?;
        let report = py
            .import("json")?
            .call_method1("loads", (out.report.to_string_pretty(),))?
            .unbind();
        let model = Model {
            graph: out.graph,
            source: model_path,
        };
        let q = QuantizedModel {
            report,
            summary: format!("{}\n{}", out.summary, out.details)
                .trim_end()
                .to_string(),
            log,
        };
        let q = Py::new(py, PyClassInitializer::from(model).add_subclass(q))?;
        match out.unreached {
            None => Ok(q),
            Some(m) => {
                let e = BudgetError::new_err(m);
                e.value(py).setattr("model", q)?;
                Err(e)
            }
        }
    })
}

/// True when `obj` is a str or os.PathLike (a file, not data).
fn is_path(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<pyo3::types::PyString>() || obj.hasattr("__fspath__").unwrap_or(false)
}

/// `lpc.fold(model, out_path=None, **options)`: `lpc fold` with the built-in pipeline (or
/// `rules=[...]`, `pipeline=`, `stop_after=`, `trust_rules=`); writes `.lir` when `out_path` is
/// given and returns the folded model.
#[pyfunction]
#[pyo3(signature = (model, out_path=None, **options))]
fn fold(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    out_path: Option<PathBuf>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<Model>> {
    guard(|| {
        let rules: FoldRules = options::parse("fold", &[], options, &[])?;
        if let Some(p) = &out_path {
            Format::of("out_path", p, &[Format::Lir]).map_err(lpc_err)?;
        }
        let (g, source) = model_of(model)?;
        let folded = Model {
            graph: py
                .detach(|| fold_model(&rules, &g, &source))
                .map_err(lpc_err)?
                .graph,
            source,
        };
        if let Some(p) = &out_path {
            folded
                .check_output("out_path", p)
                .and_then(|()| write_model(&folded.graph, p, Format::Lir))
                .map_err(lpc_err)?;
        }
        Py::new(py, folded)
    })
}

/// `lpc.accuracy(model, data, labels=None, reference=None, **options)`: `lpc accuracy --json`
/// as a dict. `model`/`reference`: paths or `lpc.Model`s; `data` as `quantize`'s calibration;
/// options: `per_layer`, `rank_samples`, `batch` and the data-reading flags.
#[pyfunction]
#[pyo3(signature = (model, data, labels=None, reference=None, **options))]
fn accuracy(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    labels: Option<&Bound<'_, PyAny>>,
    reference: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    guard(|| {
        let o: AccuracyOptions = options::parse("accuracy", &[], options, &[])?;
        let (g, _) = model_of(model)?;
        let reference = reference.map(model_of).transpose()?.map(|r| r.0);
        let opts = o.data_args.options(false).map_err(lpc_err)?;
        let data = match Data::of(data, "data")? {
            Data::Path(p) => py
                .detach(|| lpc_data::Samples::open(&p, &g, &opts))
                .map_err(|e| lpc_err(anyhow::Error::new(e).context("evaluation data")))?,
            Data::Arrays(a) => samples(a, &g, &opts, "evaluation data")?,
        };
        let labels = labels.map(|l| match is_path(l) {
            true => {
                let p: PathBuf = l.extract()?;
                let classes = lpc_cli::cmd::data_args::read_labels(&p).map_err(lpc_err)?;
                Ok(lpc_cli::cmd::data_args::Labels { name: p, classes })
            }
            false => arrays::labels(l),
        });
        let labels = labels.transpose()?;
        let job = AccuracyJob {
            model: &g,
            reference: reference.as_ref(),
            data: &data,
            labels: labels.as_ref(),
        };
        let acc = py
            .detach(|| measure(&o, &job, progress()))
            .map_err(lpc_err)?;
        Ok(py
            .import("json")?
            .call_method1("loads", (acc.to_json().to_string_pretty(),))?
            .unbind())
    })
}

/// A model JIT-compiled for fixed input shapes: call it on numpy arrays.
#[pyclass(frozen, module = "lpc")]
struct Compiled {
    model: lpc_jit::CompiledModel,
    /// Input names, in order.
    inputs: Vec<String>,
    /// Output names, in order.
    outputs: Vec<String>,
    source: PathBuf,
}

impl Compiled {
    /// The tensors of a call's arguments: positional arrays, or one dict by input name.
    fn tensors(&self, args: &Bound<'_, PyTuple>) -> PyResult<(Vec<Tensor>, bool)> {
        let plan = &self.model.plan().inputs;
        let by_name = match args.len() {
            1 => args.get_item(0)?.cast::<PyDict>().ok().cloned(),
            _ => None,
        };
        let given: Vec<Bound<'_, PyAny>> = match &by_name {
            Some(d) => {
                for k in d.keys() {
                    let k: String = k.extract()?;
                    if !self.inputs.contains(&k) {
                        return Err(PyValueError::new_err(format!(
                            "'{k}' is not an input of the model (its inputs: {:?})",
                            self.inputs
                        )));
                    }
                }
                self.inputs
                    .iter()
                    .map(|n| {
                        d.get_item(n)?
                            .ok_or_else(|| PyValueError::new_err(format!("missing input '{n}'")))
                    })
                    .collect::<PyResult<_>>()?
            }
            None => {
                if args.len() != self.inputs.len() {
                    return Err(PyTypeError::new_err(format!(
                        "the model takes {} inputs ({}), {} given",
                        self.inputs.len(),
                        self.inputs.join(", "),
                        args.len()
                    )));
                }
                args.iter().collect()
            }
        };
        let ts = given
            .iter()
            .zip(plan)
            .map(|(a, (_, name, dtype, shape))| {
                tensor_of(a, &format!("input '{name}'"), *dtype, Some(shape))
            })
            .collect::<PyResult<_>>()?;
        Ok((ts, by_name.is_some()))
    }

    fn run(&self, py: Python<'_>, ins: &[Tensor]) -> PyResult<Vec<Tensor>> {
        py.detach(|| self.model.run(ins))
            .map_err(|e| lpc_err(anyhow::Error::new(e).context(self.source.display().to_string())))
    }
}

#[pymethods]
impl Compiled {
    /// Runs the model: positional arrays (one per input, in order) return a list of arrays;
    /// one dict by input name returns a dict by output name. Inputs must have the dtype and
    /// the shape the model was compiled for; outputs are handed over without a copy.
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let (ins, by_name) = self.tensors(args)?;
            let outs = self.run(py, &ins)?;
            let arrays = outs
                .into_iter()
                .map(|t| to_numpy(py, t))
                .collect::<PyResult<Vec<_>>>()?;
            if by_name {
                let d = PyDict::new(py);
                for (n, a) in self.outputs.iter().zip(arrays) {
                    d.set_item(n, a)?;
                }
                return Ok(d.into_any().unbind());
            }
            Ok(PyList::new(py, arrays)?.into_any().unbind())
        })
    }

    /// Times `runs` runs on these inputs inside Rust (converted once, outputs dropped): the
    /// seconds of each run, the call without Python (see benches/python_overhead.py).
    #[pyo3(signature = (*args, runs=100))]
    fn time_runs(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        runs: usize,
    ) -> PyResult<Vec<f64>> {
        guard(|| {
            let (ins, _) = self.tensors(args)?;
            (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    self.run(py, &ins)?;
                    Ok(t.elapsed().as_secs_f64())
                })
                .collect()
        })
    }

    /// Input names, in order.
    #[getter]
    fn input_names(&self) -> Vec<String> {
        self.inputs.clone()
    }

    /// Output names, in order.
    #[getter]
    fn output_names(&self) -> Vec<String> {
        self.outputs.clone()
    }

    /// The compiled shape of each input, in order.
    #[getter]
    fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.model
            .plan()
            .inputs
            .iter()
            .map(|i| i.3.clone())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "<lpc.Compiled {} for input shapes {:?}>",
            self.source.display(),
            self.input_shapes()
        )
    }

    /// The plan: each step's kernel kind, the memory plan (`lpc compile --stats`).
    #[getter]
    fn stats(&self) -> String {
        self.model.stats()
    }
}

/// `lpc.compile(model, shapes=None, *, threads=None, isa="auto", fold=True)`: the model
/// JIT-compiled for `shapes` (a dict by input name or a list in input order; inputs not given
/// take their declared shape, symbolic dims 1), folded to integer ops first when it holds
/// quantizers, as `lpc run/bench/compile --backend jit` do (`fold=False`: `--no-fold`).
#[pyfunction]
#[pyo3(signature = (model, shapes=None, *, threads=None, isa="auto", fold=true))]
fn compile(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    shapes: Option<&Bound<'_, PyAny>>,
    threads: Option<usize>,
    isa: &str,
    fold: bool,
) -> PyResult<Compiled> {
    guard(|| {
        let isa = options::isa(isa)?;
        let max = lpc_cli::threads::MAX_THREADS as usize;
        if let Some(n) = threads.filter(|n| !(1..=max).contains(n)) {
            return Err(PyValueError::new_err(format!(
                "threads {n}: expected 1 to {max}"
            )));
        }
        let threads = threads.map(lpc_cli::threads::at_most_cores);
        let (g, source) = model_of(model)?;
        let fold = FoldArg { no_fold: !fold };
        let g = py
            .detach(|| prepare(g, fold, &source))
            .map_err(lpc_err)?
            .graph;
        let shapes = options::shapes(&g, shapes)?;
        let m = py
            .detach(|| jit_compile_shapes(&g, &shapes, threads, isa))
            .map_err(|e| lpc_err(e.context(source.display().to_string())))?;
        let mg = m.graph();
        Ok(Compiled {
            inputs: names(mg, &mut mg.inputs().iter().map(|&n| (n, 0))),
            outputs: names(mg, &mut mg.outputs().iter().map(|v| (v.node, v.output))),
            model: m,
            source,
        })
    })
}

/// The `lpc` Python module.
#[pymodule]
#[pyo3(name = "lpc")]
fn lpc_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // As the CLI's main: lpc-ref threads its GEMMs itself, matrixmultiply stays on one thread.
    py.import("os")?
        .getattr("environ")?
        .call_method1("setdefault", ("MATMUL_NUM_THREADS", "1"))?;
    m.add("LpcError", py.get_type::<LpcError>())?;
    m.add("BudgetError", py.get_type::<BudgetError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Model>()?;
    m.add_class::<QuantizedModel>()?;
    m.add_class::<Compiled>()?;
    m.add_function(wrap_pyfunction!(quantize, m)?)?;
    m.add_function(wrap_pyfunction!(fold, m)?)?;
    m.add_function(wrap_pyfunction!(accuracy, m)?)?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    Ok(())
}
