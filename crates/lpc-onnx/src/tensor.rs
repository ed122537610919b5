//! ONNX TensorProto ↔ lpc `Tensor`, with every length checked before anything is allocated.

use crate::proto::TensorProto;
use crate::ImportError;
use half::f16;
use lpc_ir::{DType, Tensor, TensorData};
use std::path::{Path, PathBuf};

/// Largest element count lpc accepts for one tensor (2^31).
pub const MAX_ELEMENTS: u64 = 1 << 31;

/// The lpc dtype of an ONNX `TensorProto.DataType` code.
pub fn dtype_from_onnx(code: i32) -> Option<DType> {
    Some(match code {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::Bool,
        10 => DType::F16,
        11 => DType::F64,
        _ => return None,
    })
}

/// The ONNX `TensorProto.DataType` code of an lpc dtype.
pub fn dtype_to_onnx(d: DType) -> i32 {
    match d {
        DType::F32 => 1,
        DType::U8 => 2,
        DType::I8 => 3,
        DType::I32 => 6,
        DType::I64 => 7,
        DType::Bool => 9,
        DType::F16 => 10,
        DType::F64 => 11,
    }
}

/// The ONNX name of a data type code, for messages.
pub fn onnx_type_name(code: i32) -> String {
    let n = match code {
        0 => "UNDEFINED",
        1 => "FLOAT",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "STRING",
        9 => "BOOL",
        10 => "FLOAT16",
        11 => "DOUBLE",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        16 => "BFLOAT16",
        17..=20 => "FLOAT8",
        21 | 22 => "INT4",
        23 => "FLOAT4",
        _ => return format!("data type {code}"),
    };
    n.to_string()
}

/// Checked dims → shape and element count.
pub fn checked_shape(dims: &[i64], what: &str) -> Result<(Vec<usize>, usize), ImportError> {
    let mut n: u64 = 1;
    let mut shape = Vec::with_capacity(dims.len());
    for &d in dims {
        if d < 0 {
            return Err(ImportError::Tensor(format!(
                "{what}: negative dimension {d} in {dims:?}"
            )));
        }
        n = n.saturating_mul(d as u64);
        shape.push(d as usize);
    }
    if n > MAX_ELEMENTS {
        return Err(ImportError::Tensor(format!(
            "{what}: {dims:?} has {n} elements, more than lpc accepts (2^31)"
        )));
    }
    Ok((shape, n as usize))
}

fn raw_to_tensor(
    dtype: DType,
    shape: &[usize],
    bytes: &[u8],
    what: &str,
) -> Result<Tensor, ImportError> {
    Tensor::from_le_bytes(dtype, shape, bytes)
        .map_err(|e| ImportError::Tensor(format!("{what}: {e}")))
}

fn len_check(got: usize, want: usize, field: &str, what: &str) -> Result<(), ImportError> {
    if got != want {
        return Err(ImportError::Tensor(format!(
            "{what}: {field} has {got} values, the shape needs {want}"
        )));
    }
    Ok(())
}

/// Where a tensor's external data is.
pub(crate) struct ExternalData {
    /// The file: its `location`, relative to the model's folder.
    pub path: PathBuf,
    /// Byte offset in the file.
    pub offset: u64,
    /// Byte length, when given.
    pub length: Option<u64>,
}

/// The external data of `t` (`None` when its data is inline), resolved against `base_dir`.
pub(crate) fn external_data(
    t: &TensorProto,
    base_dir: Option<&Path>,
    what: &str,
) -> Result<Option<ExternalData>, ImportError> {
    if t.data_location != Some(1) {
        return Ok(None);
    }
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for kv in &t.external_data {
        let v = kv.value.clone().unwrap_or_default();
        match kv.key.as_deref().unwrap_or("") {
            "location" => location = Some(v),
            "offset" => {
                offset = v.parse().map_err(|_| {
                    ImportError::Tensor(format!("{what}: bad external offset '{v}'"))
                })?
            }
            "length" => {
                length = Some(v.parse::<u64>().map_err(|_| {
                    ImportError::Tensor(format!("{what}: bad external length '{v}'"))
                })?)
            }
            _ => {}
        }
    }
    let loc = location
        .ok_or_else(|| ImportError::Tensor(format!("{what}: external data without a location")))?;
    if Path::new(&loc).is_absolute() || loc.contains("..") {
        return Err(ImportError::Tensor(format!(
            "{what}: external data location '{loc}' must be relative to the model"
        )));
    }
    let base = base_dir.unwrap_or(Path::new("."));
    let path = base.join(&loc);
    // A symbolic link inside the folder may point anywhere: the file it resolves to must be in
    // the model's folder too. (A missing file is reported when it is read.)
    if let (Ok(real), Ok(real_base)) = (path.canonicalize(), base.canonicalize()) {
        if !real.starts_with(&real_base) {
            return Err(ImportError::Tensor(format!(
                "{what}: external data '{loc}' resolves to {}, outside the model's folder {}",
                real.display(),
                real_base.display()
            )));
        }
    }
    Ok(Some(ExternalData {
        path,
        offset,
        length,
    }))
}

/// Converts a TensorProto; external data is read relative to `base_dir`.
pub fn tensor_from_proto(t: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor, ImportError> {
    let name = t.name.clone().unwrap_or_default();
    let what = if name.is_empty() {
        "tensor".to_string()
    } else {
        format!("tensor '{name}'")
    };
    let code = t.data_type.unwrap_or(0);
    let dtype = dtype_from_onnx(code).ok_or_else(|| {
        ImportError::Unsupported(format!(
            "{what}: data type {} is not supported by lpc",
            onnx_type_name(code)
        ))
    })?;
    if t.segment.is_some() {
        return Err(ImportError::Unsupported(format!(
            "{what}: segmented tensors are not supported"
        )));
    }
    let (shape, n) = checked_shape(&t.dims, &what)?;
    if let Some(ext) = external_data(t, base_dir, &what)? {
        let want = (n * dtype.size()) as u64;
        let len = ext.length.unwrap_or(want);
        if len != want {
            return Err(ImportError::Tensor(format!(
                "{what}: external length {len} bytes, the shape needs {want}"
            )));
        }
        let bytes = read_range(&ext.path, ext.offset, len).map_err(|e| ImportError::Io {
            path: ext.path.display().to_string(),
            msg: e,
        })?;
        return raw_to_tensor(dtype, &shape, &bytes, &what);
    }
    if let Some(raw) = &t.raw_data {
        return raw_to_tensor(dtype, &shape, raw, &what);
    }
    let data = match dtype {
        DType::F32 => {
            len_check(t.float_data.len(), n, "float_data", &what)?;
            TensorData::F32(t.float_data.clone())
        }
        DType::F64 => {
            len_check(t.double_data.len(), n, "double_data", &what)?;
            TensorData::F64(t.double_data.clone())
        }
        DType::I64 => {
            len_check(t.int64_data.len(), n, "int64_data", &what)?;
            TensorData::I64(t.int64_data.clone())
        }
        DType::I32 | DType::I8 | DType::U8 | DType::Bool | DType::F16 => {
            len_check(t.int32_data.len(), n, "int32_data", &what)?;
            let v = &t.int32_data;
            match dtype {
                DType::I32 => TensorData::I32(v.clone()),
                DType::I8 => TensorData::I8(v.iter().map(|&x| x as i8).collect()),
                DType::U8 => TensorData::U8(v.iter().map(|&x| x as u8).collect()),
                DType::Bool => TensorData::Bool(v.iter().map(|&x| x != 0).collect()),
                _ => TensorData::F16(v.iter().map(|&x| f16::from_bits(x as u16)).collect()),
            }
        }
    };
    Tensor::new(&shape, data).map_err(|e| ImportError::Tensor(format!("{what}: {e}")))
}

fn read_range(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open external data: {e}"))?;
    let size = f.metadata().map_err(|e| e.to_string())?.len();
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(format!(
            "external data file has {size} bytes, need {len} at offset {offset}"
        ));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Converts an lpc tensor to a TensorProto with raw data.
pub fn tensor_to_proto(name: &str, t: &Tensor) -> TensorProto {
    TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(dtype_to_onnx(t.dtype())),
        name: Some(name.to_string()),
        raw_data: Some(t.to_le_bytes()),
        ..Default::default()
    }
}
