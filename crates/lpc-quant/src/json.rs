//! A tiny JSON writer for reports (no serde needed): values built as a tree, printed indented.

use std::fmt::Write;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// null
    Null,
    /// true/false
    Bool(bool),
    /// A number; non-finite numbers print as null.
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object with keys in insertion order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from (key, value) pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// A number value.
    pub fn num(x: impl Into<f64>) -> Json {
        Json::Num(x.into())
    }

    /// Pretty-printed text.
    pub fn to_string_pretty(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, 0);
        s.push('\n');
        s
    }

    fn write(&self, s: &mut String, ind: usize) {
        match self {
            Json::Null => s.push_str("null"),
            Json::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
            Json::Num(x) if x.is_finite() => {
                if x.fract() == 0.0 && x.abs() < 1e15 {
                    let _ = write!(s, "{}", *x as i64);
                } else {
                    let _ = write!(s, "{x}");
                }
            }
            Json::Num(_) => s.push_str("null"),
            Json::Str(t) => escape(s, t),
            Json::Arr(v) => {
                if v.is_empty() {
                    s.push_str("[]");
                    return;
                }
                let simple = v
                    .iter()
                    .all(|x| matches!(x, Json::Num(_) | Json::Null | Json::Bool(_)));
                s.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    if simple {
                        if i > 0 {
                            s.push(' ');
                        }
                    } else {
                        newline(s, ind + 1);
                    }
                    x.write(s, ind + 1);
                }
                if !simple {
                    newline(s, ind);
                }
                s.push(']');
            }
            Json::Obj(kv) => {
                if kv.is_empty() {
                    s.push_str("{}");
                    return;
                }
                s.push('{');
                for (i, (k, v)) in kv.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    newline(s, ind + 1);
                    escape(s, k);
                    s.push_str(": ");
                    v.write(s, ind + 1);
                }
                newline(s, ind);
                s.push('}');
            }
        }
    }
}

fn newline(s: &mut String, ind: usize) {
    s.push('\n');
    for _ in 0..ind {
        s.push_str("  ");
    }
}

fn escape(s: &mut String, t: &str) {
    s.push('"');
    for c in t.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_valid_json() {
        let j = Json::obj([
            ("a", Json::num(1.5)),
            ("b", Json::Arr(vec![Json::num(1), Json::num(f64::NAN)])),
            ("c", Json::str("q\"\n")),
            ("d", Json::Obj(vec![])),
        ]);
        assert_eq!(
            j.to_string_pretty(),
            "{\n  \"a\": 1.5,\n  \"b\": [1, null],\n  \"c\": \"q\\\"\\n\",\n  \"d\": {}\n}\n"
        );
    }
}
