//! Keyword arguments as the CLI's flags: `preset="performance"` is `--preset performance`,
//! parsed by the verb's own clap definitions (`lpc_cli::cmd`), so a Python option has the
//! CLI flag's default, check and message.

use lpc_cli::inputs::InputShapes;
use lpc_cli::jit::Isa;
use lpc_ir::Graph;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyTuple};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

/// Parses `kwargs` as the flags of `T` (a clap argument group of `lpc <verb>`), after the
/// `positional` arguments. A keyword is a long flag with `_` for `-`; `True` sets a switch
/// (`False` leaves it off), a list repeats the flag. Keywords that are no flag of the verb, or
/// are in `reserved` (flags whose data the Python function takes as its own arguments), are a
/// `TypeError`; a bad value is a `ValueError` with clap's message.
pub fn parse<T: clap::Args + clap::FromArgMatches>(
    verb: &str,
    positional: &[&OsStr],
    kwargs: Option<&Bound<'_, PyDict>>,
    reserved: &[&str],
) -> PyResult<T> {
    let cmd = T::augment_args(clap::Command::new("lpc").no_binary_name(true));
    let known: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| !reserved.contains(&l)))
        .collect();
    let mut argv: Vec<OsString> = positional.iter().map(|p| p.to_os_string()).collect();
    for (k, v) in kwargs.into_iter().flat_map(|d| d.iter()) {
        let key: String = k.extract()?;
        let long = key.replace('_', "-");
        let Some(arg) = known.iter().find(|a| a.get_long() == Some(long.as_str())) else {
            let names: Vec<String> = known
                .iter()
                .filter_map(|a| a.get_long().map(|l| l.replace('-', "_")))
                .collect();
            return Err(PyTypeError::new_err(format!(
                "lpc.{verb}() got an unexpected keyword argument '{key}' (its options: {})",
                names.join(", ")
            )));
        };
        if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            let on = v.cast::<PyBool>().map_err(|_| {
                PyTypeError::new_err(format!("lpc.{verb}(): {key} must be True or False"))
            })?;
            if on.is_true() {
                argv.push(format!("--{long}").into());
            }
            continue;
        }
        let items: Vec<Bound<'_, PyAny>> =
            if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
                v.try_iter()?.collect::<PyResult<_>>()?
            } else {
                vec![v]
            };
        for item in items {
            argv.push(format!("--{long}={}", item.str()?).into());
        }
    }
    let m = cmd
        .try_get_matches_from(argv)
        .map_err(|e| clap_error(verb, e))?;
    T::from_arg_matches(&m).map_err(|e| clap_error(verb, e))
}

/// clap's message without its usage lines: `invalid value 'x' for '--preset <PRESET>': ...`.
fn clap_error(verb: &str, e: clap::Error) -> PyErr {
    let text = e.render().to_string();
    let msg: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .collect();
    let msg = msg.join(" ");
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    PyValueError::new_err(format!("lpc.{verb}(): {msg}"))
}

/// The JIT code tier `isa` names (the values of the CLI's `--isa`).
pub fn isa(name: &str) -> PyResult<Isa> {
    use clap::ValueEnum;
    Isa::from_str(name, true).map_err(|_| {
        let names: Vec<String> = Isa::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        PyValueError::new_err(format!(
            "isa '{name}': expected one of {}",
            names.join(", ")
        ))
    })
}

/// The input shapes `lpc.compile` binds: `shapes` as a dict by input name or a list in input
/// order; inputs it does not give take their declared shape with symbolic dims 1 (as `lpc
/// compile` without `--dim`).
pub fn shapes(g: &Graph, shapes: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Vec<usize>>> {
    let mut out = InputShapes::of(g, &HashMap::new(), &[])
        .map_err(crate::lpc_err)?
        .shapes;
    let names: Vec<String> = g
        .inputs()
        .iter()
        .map(|&n| g.node(n).outputs[0].name.clone())
        .collect();
    let Some(s) = shapes else { return Ok(out) };
    if let Ok(d) = s.cast::<PyDict>() {
        for (k, v) in d.iter() {
            let k: String = k.extract()?;
            let Some(i) = names.iter().position(|n| *n == k) else {
                return Err(PyValueError::new_err(format!(
                    "shapes: '{k}' is not an input of the model (its inputs: {names:?})"
                )));
            };
            out[i] = shape_of(&v, &k)?;
        }
        return Ok(out);
    }
    let given: Vec<Bound<'_, PyAny>> = s
        .try_iter()
        .map_err(|_| {
            PyTypeError::new_err("shapes: expected a dict by input name or a list of shapes")
        })?
        .collect::<PyResult<_>>()?;
    if given.len() != names.len() {
        return Err(PyValueError::new_err(format!(
            "shapes: {} given for a model with {} inputs ({}); a dict by name may give some",
            given.len(),
            names.len(),
            names.join(", ")
        )));
    }
    given
        .iter()
        .zip(&names)
        .map(|(v, n)| shape_of(v, n))
        .collect()
}

/// A shape: a sequence of non-negative ints.
fn shape_of(v: &Bound<'_, PyAny>, input: &str) -> PyResult<Vec<usize>> {
    v.extract().map_err(|_| {
        PyTypeError::new_err(format!(
            "shapes: the shape of input '{input}' must be a sequence of non-negative ints, got {}",
            v.repr().map_or("?".into(), |r| r.to_string())
        ))
    })
}
