//! numpy arrays in and out: arrays (or anything `numpy.asarray` takes) to lpc tensors, one
//! copy into the tensor's buffer; tensors to arrays without a copy (the array takes over the
//! tensor's buffer); data (an array, a dict by input name, an iterable of either, or a path)
//! to lpc-data's sample sets.

use lpc_cli::cmd::data_args::{labels_of, Labels};
use lpc_data::{LoadOptions, Samples};
use lpc_ir::{DType, Graph, Tensor, TensorData};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    Element, IntoPyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::path::PathBuf;

/// The numpy name of an lpc dtype, for messages.
pub fn numpy_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float32",
        DType::F16 => "float16",
        DType::F64 => "float64",
        DType::I8 => "int8",
        DType::U8 => "uint8",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::Bool => "bool",
    }
}

/// `obj` as a numpy array: itself, or `numpy.asarray(obj)` (lists, torch tensors...).
fn ndarray<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return Ok(a.clone());
    }
    let a = obj
        .py()
        .import("numpy")?
        .call_method1("asarray", (obj,))
        .map_err(|e| {
            PyTypeError::new_err(format!(
                "{what}: expected a numpy array, got {} ({e})",
                crate::type_name(obj)
            ))
        })?;
    Ok(a.cast::<PyUntypedArray>()?.clone())
}

/// The numpy dtype of an lpc dtype.
fn descr(py: Python<'_>, d: DType) -> Bound<'_, numpy::PyArrayDescr> {
    match d {
        DType::F32 => numpy::dtype::<f32>(py),
        DType::F16 => numpy::dtype::<half::f16>(py),
        DType::F64 => numpy::dtype::<f64>(py),
        DType::I8 => numpy::dtype::<i8>(py),
        DType::U8 => numpy::dtype::<u8>(py),
        DType::I32 => numpy::dtype::<i32>(py),
        DType::I64 => numpy::dtype::<i64>(py),
        DType::Bool => numpy::dtype::<bool>(py),
    }
}

/// The lpc dtype of a numpy array (`expected` is tried first).
fn dtype_of(a: &Bound<'_, PyUntypedArray>, expected: Option<DType>, what: &str) -> PyResult<DType> {
    use DType::*;
    let dt = a.dtype();
    expected
        .into_iter()
        .chain([F32, F16, F64, I8, U8, I32, I64, Bool])
        .find(|&d| descr(a.py(), d).is_equiv_to(&dt))
        .ok_or_else(|| {
            PyTypeError::new_err(format!(
                "{what}: dtype {dt} is not one lpc takes (float32, float16, float64, int8, uint8, int32, int64, bool)"
            ))
        })
}

/// The elements of `a` in row-major order: one copy (element by element when `a` is not
/// C-contiguous).
fn elements<T: Element + Copy>(a: &Bound<'_, PyUntypedArray>) -> PyResult<Vec<T>> {
    let a = a.cast::<PyArrayDyn<T>>()?;
    let ro = a.try_readonly()?;
    Ok(match ro.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => ro.as_array().iter().copied().collect(),
    })
}

/// `obj` as an lpc tensor (`what` names it in errors: "input 'x'"), checked against the `dtype` and
/// `shape` expected when given.
pub fn tensor_of(
    obj: &Bound<'_, PyAny>,
    what: &str,
    dtype: Option<DType>,
    shape: Option<&[usize]>,
) -> PyResult<Tensor> {
    let a = ndarray(obj, what)?;
    let d = dtype_of(&a, dtype, what)?;
    if let Some(want) = dtype.filter(|&w| w != d) {
        return Err(PyTypeError::new_err(format!(
            "{what}: expected dtype {} ({want}), got {}",
            numpy_name(want),
            numpy_name(d)
        )));
    }
    if let Some(want) = shape.filter(|&w| w != a.shape()) {
        return Err(PyValueError::new_err(format!(
            "{what}: the model was compiled for shape {want:?}, got {:?} (compile again for this shape)",
            a.shape()
        )));
    }
    let data = match d {
        DType::F32 => TensorData::F32(elements(&a)?),
        DType::F16 => TensorData::F16(elements(&a)?),
        DType::F64 => TensorData::F64(elements(&a)?),
        DType::I8 => TensorData::I8(elements(&a)?),
        DType::U8 => TensorData::U8(elements(&a)?),
        DType::I32 => TensorData::I32(elements(&a)?),
        DType::I64 => TensorData::I64(elements(&a)?),
        DType::Bool => TensorData::Bool(elements(&a)?),
    };
    Tensor::new(a.shape(), data).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

/// A tensor as a numpy array that owns the tensor's buffer (no copy).
pub fn to_numpy(py: Python<'_>, t: Tensor) -> PyResult<Py<PyAny>> {
    fn array<T: Element>(py: Python<'_>, shape: &[usize], v: Vec<T>) -> PyResult<Py<PyAny>> {
        let a = ArrayD::from_shape_vec(IxDyn(shape), v)
            .map_err(|e| crate::LpcError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py).into_any().unbind())
    }
    let shape = t.shape().to_vec();
    match t.into_data() {
        TensorData::F32(v) => array(py, &shape, v),
        TensorData::F16(v) => array(py, &shape, v),
        TensorData::F64(v) => array(py, &shape, v),
        TensorData::I8(v) => array(py, &shape, v),
        TensorData::U8(v) => array(py, &shape, v),
        TensorData::I32(v) => array(py, &shape, v),
        TensorData::I64(v) => array(py, &shape, v),
        TensorData::Bool(v) => array(py, &shape, v),
    }
}

/// Data as a Python function takes it: a path for the CLI's readers, or arrays.
pub enum Data {
    /// A file or folder (str or os.PathLike), read as the CLI reads `--calib`/`--data`.
    Path(PathBuf),
    /// Arrays: samples stacked on axis 0.
    Arrays(Vec<Item>),
}

/// One array, one per input in input order (a tuple or list), or a dict by input name: the
/// whole data set, or one item of an iterable (a sample or a batch).
pub enum Item {
    /// For a model with one input.
    One(Tensor),
    /// One per model input, in order.
    Positional(Vec<Tensor>),
    /// By input name.
    Named(Vec<(String, Tensor)>),
}

impl Data {
    /// Reads `obj` (`what`: "calibration", "data") as data.
    pub fn of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Data> {
        if crate::is_path(obj) {
            return Ok(Data::Path(obj.extract()?));
        }
        if is_array(obj) || obj.is_instance_of::<PyDict>() {
            return Ok(Data::Arrays(vec![item(obj, what)?]));
        }
        let it = obj.try_iter().map_err(|_| {
            PyTypeError::new_err(format!(
                "{what}: expected a numpy array, a dict of arrays by input name, an iterable of those, or a path; got {}",
                crate::type_name(obj)
            ))
        })?;
        let mut items = vec![];
        for (k, x) in it.enumerate() {
            items.push(item(&x?, &format!("{what} item {k}"))?);
        }
        if items.is_empty() {
            return Err(PyValueError::new_err(format!(
                "{what}: the iterable yielded no samples"
            )));
        }
        Ok(Data::Arrays(items))
    }
}

/// True for a numpy array or an object numpy reads as one without iterating it.
fn is_array(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyUntypedArray>().is_ok()
        || obj.hasattr("__array__").unwrap_or(false)
        || obj.hasattr("__array_interface__").unwrap_or(false)
}

/// One data item: a dict by input name, a tuple/list of arrays (one per input), or one array.
fn item(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Item> {
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut v = vec![];
        for (k, a) in d.iter() {
            let k: String = k.extract().map_err(|_| {
                PyTypeError::new_err(format!("{what}: dict keys must be input names (str)"))
            })?;
            let t = tensor_of(&a, &format!("{what}: input '{k}'"), None, None)?;
            v.push((k, t));
        }
        return Ok(Item::Named(v));
    }
    if obj.is_instance_of::<PyTuple>() || obj.is_instance_of::<PyList>() {
        let v = obj
            .try_iter()?
            .enumerate()
            .map(|(k, a)| tensor_of(&a?, &format!("{what}[{k}]"), None, None))
            .collect::<PyResult<_>>()?;
        return Ok(Item::Positional(v));
    }
    Ok(Item::One(tensor_of(obj, what, None, None)?))
}

/// `items` as lpc-data samples for `g` (`what` names them in errors): each item's arrays
/// given a leading sample axis when they lack one, stacked per input, then opened as the same
/// arrays read from `.npy` files are (subset, checks).
pub fn samples(items: Vec<Item>, g: &Graph, opts: &LoadOptions, what: &str) -> PyResult<Samples> {
    let specs = lpc_data::InputSpec::of(g);
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let one = items.len() == 1;
    let mut per_input: Vec<Vec<Tensor>> = vec![vec![]; specs.len()];
    let mut named_once = None;
    for (k, it) in items.into_iter().enumerate() {
        let at = if one {
            what.to_string()
        } else {
            format!("{what}: item {k}")
        };
        let named: Vec<(String, Tensor)> = match it {
            Item::Named(v) => v,
            Item::One(t) if specs.len() == 1 => vec![(names[0].to_string(), t)],
            Item::One(_) => {
                return Err(PyValueError::new_err(format!(
                    "{at}: one array for a model with {} inputs ({}); give a dict by input name or a tuple in input order",
                    names.len(),
                    names.join(", ")
                )))
            }
            Item::Positional(v) if v.len() == specs.len() => {
                names.iter().map(|n| n.to_string()).zip(v).collect()
            }
            Item::Positional(v) => {
                return Err(PyValueError::new_err(format!(
                    "{at}: {} arrays for a model with {} inputs ({}); give exactly the inputs (a data loader's labels go elsewhere)",
                    v.len(),
                    names.len(),
                    names.join(", ")
                )))
            }
        };
        if one {
            // A single item is the whole set: lpc-data checks its names and shapes.
            named_once = Some(named);
            break;
        }
        for (n, t) in named {
            let Some(i) = names.iter().position(|m| *m == n) else {
                return Err(PyValueError::new_err(format!(
                    "{at}: '{n}' is not an input of the model (its inputs: {names:?})"
                )));
            };
            let rank = specs[i].dims.as_ref().map_or(t.rank(), |d| d.len());
            let t = match t.rank() + 1 == rank {
                true => {
                    let mut sh = vec![1];
                    sh.extend_from_slice(t.shape());
                    t.reshape(&sh).map_err(|e| crate::lpc_err(e.into()))?
                }
                false => t,
            };
            per_input[i].push(t);
        }
    }
    let arrays = match named_once {
        Some(v) => v,
        None => {
            let mut v = vec![];
            for (n, ts) in names.iter().zip(per_input) {
                if ts.is_empty() {
                    return Err(PyValueError::new_err(format!(
                        "{what}: no array for input '{n}' in the items"
                    )));
                }
                let t = lpc_data::concat_rows(&ts)
                    .map_err(|e| PyValueError::new_err(format!("{what}: input '{n}': {e}")))?;
                v.push((n.to_string(), t));
            }
            v
        }
    };
    Samples::from_arrays(arrays, g, opts, what).map_err(|e| crate::lpc_err(e.into()))
}

/// Labels given as an array: integer class ids, one per sample.
pub fn labels(obj: &Bound<'_, PyAny>) -> PyResult<Labels> {
    let t = tensor_of(obj, "labels", None, None)?;
    let name = PathBuf::from("labels");
    let classes = labels_of(t, &name).map_err(crate::lpc_err)?;
    Ok(Labels { name, classes })
}
