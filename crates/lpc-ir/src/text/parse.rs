//! The `.lir` parser. Hand-written: a small lexer per line and a recursive reader; every error
//! carries line:column. Never panics on any input.

use super::attrs::{op_from, Attr, AttrBag};
use super::weights::Weights;
use crate::{DType, Dim, Graph, Op, Output, Shape, Tensor, TensorData, ValueRef, ValueType};
use std::collections::HashMap;
use std::sync::Arc;

/// A parse error at a position.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{line}:{col}: {msg}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What was expected or is wrong.
    pub msg: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Value(String),  // %name
    Ident(String),  // bare word (may contain digits, dots, -, +)
    Str(String),    // "quoted"
    Punct(char),
}

struct Lexer<'a> {
    chars: Vec<(usize, char)>,
    i: usize,
    line: usize,
    _src: &'a str,
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | ':')
}

impl<'a> Lexer<'a> {
    fn err(&self, col: usize, msg: impl Into<String>) -> ParseError {
        ParseError { line: self.line, col, msg: msg.into() }
    }
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.chars.get(self.i).map_or(0, |c| c.0 + 1);
        self.i += 1; // opening quote
        let mut s = String::new();
        while let Some(&(_, c)) = self.chars.get(self.i) {
            self.i += 1;
            match c {
                '"' => return Ok(s),
                '\\' => {
                    let (_, e) = *self.chars.get(self.i).ok_or_else(|| self.err(start, "unterminated escape"))?;
                    self.i += 1;
                    match e {
                        '"' => s.push('"'),
                        '\\' => s.push('\\'),
                        'n' => s.push('\n'),
                        'u' => {
                            let mut hex = String::new();
                            if self.chars.get(self.i).map(|c| c.1) != Some('{') {
                                return Err(self.err(start, "expected \\u{...}"));
                            }
                            self.i += 1;
                            while let Some(&(_, h)) = self.chars.get(self.i) {
                                self.i += 1;
                                if h == '}' {
                                    break;
                                }
                                hex.push(h);
                            }
                            let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                            s.push(ch.ok_or_else(|| self.err(start, format!("bad escape \\u{{{hex}}}")))?);
                        }
                        o => return Err(self.err(start, format!("unknown escape \\{o}"))),
                    }
                }
                c => s.push(c),
            }
        }
        Err(self.err(start, "unterminated string"))
    }
    fn tokens(mut self) -> Result<Vec<(usize, Tok)>, ParseError> {
        let mut out = vec![];
        while let Some(&(pos, c)) = self.chars.get(self.i) {
            let col = pos + 1;
            if c == '#' {
                break;
            }
            if c.is_whitespace() {
                self.i += 1;
                continue;
            }
            if c == '%' {
                self.i += 1;
                let t = if self.chars.get(self.i).map(|c| c.1) == Some('"') {
                    self.string()?
                } else {
                    let s = self.word();
                    if s.is_empty() {
                        return Err(self.err(col, "expected a value name after %"));
                    }
                    s
                };
                out.push((col, Tok::Value(t)));
            } else if c == '"' {
                let s = self.string()?;
                out.push((col, Tok::Str(s)));
            } else if is_word(c) && c != ':' {
                let w = self.word();
                out.push((col, if w == "_" { Tok::Punct('_') } else { Tok::Ident(w) }));
            } else if "()[]{},=@_:".contains(c) {
                self.i += 1;
                out.push((col, Tok::Punct(c)));
            } else if c == '?' || c == '*' {
                self.i += 1;
                out.push((col, Tok::Punct(c)));
            } else {
                return Err(self.err(col, format!("unexpected character '{c}'")));
            }
        }
        Ok(out)
    }
    fn word(&mut self) -> String {
        let mut s = String::new();
        while let Some(&(_, c)) = self.chars.get(self.i) {
            if !is_word(c) {
                break;
            }
            s.push(c);
            self.i += 1;
        }
        s
    }
}

struct Line {
    toks: Vec<(usize, Tok)>,
    i: usize,
    line: usize,
    end_col: usize,
}

impl Line {
    fn err(&self, msg: impl Into<String>) -> ParseError {
        let col = self.toks.get(self.i).map_or(self.end_col, |t| t.0);
        ParseError { line: self.line, col, msg: msg.into() }
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.1)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).map(|t| t.1.clone());
        self.i += 1;
        t
    }
    fn punct(&mut self, c: char) -> Result<(), ParseError> {
        match self.peek() {
            Some(Tok::Punct(p)) if *p == c => {
                self.i += 1;
                Ok(())
            }
            _ => Err(self.err(format!("expected '{c}'"))),
        }
    }
    fn is_punct(&self, c: char) -> bool {
        matches!(self.peek(), Some(Tok::Punct(p)) if *p == c)
    }
    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.err("expected a word")),
        }
    }
    fn value(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Value(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.err("expected a %value")),
        }
    }
    fn done(&self) -> Result<(), ParseError> {
        if self.i < self.toks.len() {
            return Err(self.err("unexpected text at end of line"));
        }
        Ok(())
    }
    /// dtype[dims] or ?[dims] or dtype[*]
    fn vtype(&mut self) -> Result<ValueType, ParseError> {
        let dtype = if self.is_punct('?') {
            self.i += 1;
            None
        } else {
            let w = self.ident()?;
            Some(DType::from_name(&w).ok_or_else(|| self.err(format!("unknown dtype '{w}'")))?)
        };
        self.punct('[')?;
        if self.is_punct('*') {
            self.i += 1;
            self.punct(']')?;
            return Ok(ValueType { dtype, shape: None });
        }
        let mut dims = vec![];
        while !self.is_punct(']') {
            if !dims.is_empty() {
                self.punct(',')?;
            }
            dims.push(match self.next() {
                Some(Tok::Ident(w)) => match w.parse::<usize>() {
                    Ok(n) => Dim::Known(n),
                    Err(_) if w.starts_with(|c: char| c.is_ascii_digit()) => {
                        self.i -= 1;
                        return Err(self.err(format!("bad dimension '{w}'")));
                    }
                    Err(_) => Dim::Sym(w),
                },
                Some(Tok::Str(s)) => Dim::Sym(s),
                _ => {
                    self.i = self.i.saturating_sub(1);
                    return Err(self.err("expected a dimension"));
                }
            });
        }
        self.punct(']')?;
        Ok(ValueType { dtype, shape: Some(Shape(dims)) })
    }
    fn known_type(&mut self) -> Result<(DType, Vec<usize>), ParseError> {
        let t = self.vtype()?;
        let d = t.dtype.ok_or_else(|| self.err("a constant needs a dtype"))?;
        let s = t.shape.and_then(|s| s.as_known()).ok_or_else(|| self.err("a constant needs a known shape"))?;
        Ok((d, s))
    }
    /// [v, v, ...] as a tensor of the given type.
    fn tensor_values(&mut self, d: DType, shape: &[usize]) -> Result<Tensor, ParseError> {
        self.punct('[')?;
        let mut words = vec![];
        while !self.is_punct(']') {
            if !words.is_empty() {
                self.punct(',')?;
            }
            words.push((self.toks.get(self.i).map_or(self.end_col, |t| t.0), self.ident()?));
        }
        self.punct(']')?;
        let n: usize = shape.iter().product();
        if words.len() != n {
            return Err(self.err(format!("{d}{shape:?} needs {n} values, got {}", words.len())));
        }
        let bad = |w: &str| self.err(format!("'{w}' is not a valid {d} value"));
        let f = |w: &str| -> Option<f64> {
            match w {
                "NaN" | "nan" => Some(f64::NAN),
                "inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                _ => w.parse().ok(),
            }
        };
        let data = match d {
            DType::F32 => TensorData::F32(words.iter().map(|(_, w)| f(w).map(|v| v as f32).ok_or_else(|| bad(w))).collect::<Result<_, _>>()?),
            DType::F16 => TensorData::F16(
                words.iter().map(|(_, w)| f(w).map(|v| half::f16::from_f32(v as f32)).ok_or_else(|| bad(w))).collect::<Result<_, _>>()?,
            ),
            DType::F64 => TensorData::F64(words.iter().map(|(_, w)| f(w).ok_or_else(|| bad(w))).collect::<Result<_, _>>()?),
            DType::I8 => TensorData::I8(words.iter().map(|(_, w)| w.parse().map_err(|_| bad(w))).collect::<Result<_, _>>()?),
            DType::U8 => TensorData::U8(words.iter().map(|(_, w)| w.parse().map_err(|_| bad(w))).collect::<Result<_, _>>()?),
            DType::I32 => TensorData::I32(words.iter().map(|(_, w)| w.parse().map_err(|_| bad(w))).collect::<Result<_, _>>()?),
            DType::I64 => TensorData::I64(words.iter().map(|(_, w)| w.parse().map_err(|_| bad(w))).collect::<Result<_, _>>()?),
            DType::Bool => TensorData::Bool(words.iter().map(|(_, w)| w.parse().map_err(|_| bad(w))).collect::<Result<_, _>>()?),
        };
        Tensor::new(shape, data).map_err(|e| self.err(e.to_string()))
    }
    fn attr(&mut self) -> Result<Attr, ParseError> {
        if self.is_punct('[') {
            self.i += 1;
            let mut v = vec![];
            while !self.is_punct(']') {
                if !v.is_empty() {
                    self.punct(',')?;
                }
                let w = self.ident()?;
                v.push(w.parse::<i64>().map_err(|_| {
                    self.i -= 1;
                    self.err(format!("'{w}' is not an integer"))
                })?);
            }
            self.punct(']')?;
            return Ok(Attr::Ints(v));
        }
        let w = self.ident()?;
        if w == "true" || w == "false" {
            return Ok(Attr::Bool(w == "true"));
        }
        if let Ok(v) = w.parse::<i64>() {
            return Ok(Attr::Int(v));
        }
        let numeric = w.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.'));
        if numeric || w == "NaN" || w == "inf" {
            let v = match w.as_str() {
                "NaN" => f32::NAN,
                "inf" => f32::INFINITY,
                "-inf" => f32::NEG_INFINITY,
                _ => w.parse().map_err(|_| {
                    self.i -= 1;
                    self.err(format!("'{w}' is not a number"))
                })?,
            };
            return Ok(Attr::Float(v));
        }
        if let Some(d) = DType::from_name(&w) {
            if self.is_punct('[') {
                self.i -= 1;
                let (d2, s) = self.known_type()?;
                debug_assert_eq!(d, d2);
                return Ok(Attr::Tensor(self.tensor_values(d2, &s)?));
            }
        }
        Ok(Attr::Ident(w))
    }
}

/// Parses `.lir` text whose large constants are all inline (no weights).
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    parse_with_weights(text, &Weights::default())
}

/// Parses `.lir` text, taking large constants from `weights`.
pub fn parse_with_weights(text: &str, weights: &Weights) -> Result<Graph, ParseError> {
    let mut g: Option<Graph> = None;
    let mut values: HashMap<String, ValueRef> = HashMap::new();
    let mut finished = false;
    let mut last_line = 0;
    for (ln, raw) in text.lines().enumerate() {
        let line_no = ln + 1;
        last_line = line_no;
        let lx = Lexer { chars: raw.char_indices().collect(), i: 0, line: line_no, _src: raw };
        let toks = lx.tokens()?;
        if toks.is_empty() {
            continue;
        }
        let mut l = Line { toks, i: 0, line: line_no, end_col: raw.len() + 1 };
        if finished {
            return Err(l.err("text after the closing '}'"));
        }
        let Some(graph) = g.as_mut() else {
            if l.ident()? != "graph" {
                return Err(ParseError { line: line_no, col: 1, msg: "expected 'graph'".into() });
            }
            let name = match l.next() {
                Some(Tok::Str(s)) => s,
                _ => return Err(l.err("expected the graph name as a string")),
            };
            l.punct('{')?;
            l.done()?;
            g = Some(Graph::new(name));
            continue;
        };
        if l.is_punct('}') {
            l.i += 1;
            l.done()?;
            finished = true;
            continue;
        }
        if matches!(l.peek(), Some(Tok::Ident(w)) if w == "return") {
            l.i += 1;
            let mut outs = vec![];
            while l.i < l.toks.len() {
                if !outs.is_empty() {
                    l.punct(',')?;
                }
                let v = l.value()?;
                outs.push(*values.get(&v).ok_or_else(|| {
                    l.i -= 1;
                    l.err(format!("undefined value %{v}"))
                })?);
            }
            graph.set_outputs(outs);
            continue;
        }
        // %a, %b = op(...) {...} : t, t @"node"
        let mut outs = vec![l.value()?];
        while l.is_punct(',') {
            l.i += 1;
            outs.push(l.value()?);
        }
        l.punct('=')?;
        for o in &outs {
            if values.contains_key(o) {
                return Err(l.err(format!("value %{o} is defined twice")));
            }
        }
        let op_col = l.toks.get(l.i).map_or(l.end_col, |t| t.0);
        let opname = l.ident()?;
        let id = if opname == "const" {
            let (d, shape) = l.known_type()?;
            let t = if let Some(Tok::Ident(w)) = l.peek() {
                let w = w.clone();
                let digest = w.strip_prefix("sha256:").ok_or_else(|| l.err("expected values [..] or sha256:<digest>"))?.to_string();
                l.i += 1;
                let t = weights.get(&digest).ok_or_else(|| {
                    l.i -= 1;
                    l.err(format!("constant %{} (sha256:{digest}) is not in the weights file", outs[0]))
                })?;
                if t.dtype() != d || t.shape() != shape.as_slice() {
                    return Err(l.err(format!("weights hold {t} for this digest, the text says {d}{shape:?}")));
                }
                t.clone()
            } else {
                Arc::new(l.tensor_values(d, &shape)?)
            };
            if outs.len() != 1 {
                return Err(l.err("a constant has one output"));
            }
            let v = graph.add_const(outs[0].clone(), t);
            if graph.value_name(v) != outs[0] {
                // Equal content already interned under another name: keep both names distinct.
                return Err(l.err(format!("constant %{} duplicates %{} (constants are interned)", outs[0], graph.value_name(v))));
            }
            v.node
        } else {
            l.punct('(')?;
            let mut ins = vec![];
            while !l.is_punct(')') {
                if !ins.is_empty() {
                    l.punct(',')?;
                }
                if l.is_punct('_') {
                    l.i += 1;
                    ins.push(None);
                } else {
                    let v = l.value()?;
                    ins.push(Some(*values.get(&v).ok_or_else(|| {
                        l.i -= 1;
                        l.err(format!("undefined value %{v}"))
                    })?));
                }
            }
            l.punct(')')?;
            let mut attrs = vec![];
            if l.is_punct('{') {
                l.i += 1;
                while !l.is_punct('}') {
                    if !attrs.is_empty() {
                        l.punct(',')?;
                    }
                    let k = l.ident()?;
                    l.punct('=')?;
                    attrs.push((k, l.attr()?));
                }
                l.punct('}')?;
            }
            l.punct(':')?;
            let mut tys = vec![l.vtype()?];
            while l.is_punct(',') {
                l.i += 1;
                tys.push(l.vtype()?);
            }
            if tys.len() != outs.len() {
                return Err(l.err(format!("{} outputs but {} types", outs.len(), tys.len())));
            }
            let opname_err = |msg: String| ParseError { line: line_no, col: op_col, msg };
            if opname == "input" {
                if !ins.is_empty() || outs.len() != 1 {
                    return Err(opname_err("input takes no operands and has one output".into()));
                }
                let mut bag = AttrBag::new(attrs);
                let idx = match bag_index(&mut bag) {
                    Ok(i) => i,
                    Err(m) => return Err(opname_err(m)),
                };
                bag.finish().map_err(opname_err)?;
                if idx != graph.inputs().len() {
                    return Err(opname_err(format!("input index {idx}, expected {}", graph.inputs().len())));
                }
                graph.add_input(outs[0].clone(), tys[0].clone()).node
            } else {
                let mut bag = AttrBag::new(attrs);
                let op = op_from(&opname, &mut bag).map_err(opname_err)?;
                bag.finish().map_err(opname_err)?;
                if matches!(op, Op::Input { .. } | Op::Const(_)) {
                    return Err(opname_err("use 'input' or 'const'".into()));
                }
                let (req, max) = op.arity();
                if ins.len() < req || max.is_some_and(|m| ins.len() > m) {
                    return Err(opname_err(format!("{opname} takes {req}..{} inputs, got {}", max.map_or("".into(), |m| m.to_string()), ins.len())));
                }
                let outputs = outs.iter().zip(tys).map(|(n, ty)| Output { name: n.clone(), ty }).collect();
                graph.add_node(outs[0].clone(), op, &ins, outputs)
            }
        };
        if l.is_punct('@') {
            l.i += 1;
            match l.next() {
                Some(Tok::Str(s)) => graph.node_mut(id).name = s,
                _ => {
                    l.i -= 1;
                    return Err(l.err("expected a quoted node name after @"));
                }
            }
        }
        l.done()?;
        for (k, o) in outs.into_iter().enumerate() {
            values.insert(o, ValueRef { node: id, output: k });
        }
    }
    if !finished {
        return Err(ParseError { line: last_line.max(1), col: 1, msg: "missing closing '}'".into() });
    }
    g.ok_or(ParseError { line: 1, col: 1, msg: "empty text: expected 'graph'".into() })
}

fn bag_index(bag: &mut AttrBag) -> Result<usize, String> {
    // The input index is printed as an attribute `index`.
    let op = op_from_input(bag)?;
    Ok(op)
}

fn op_from_input(bag: &mut AttrBag) -> Result<usize, String> {
    bag.take_index()
}
