//! The `.lir` parser: tokens to a `Graph`, adding nodes in file order.

use super::attrs::{activation_from_word, visit, Visitor, Word};
use super::lex::{lex, Tok, Token};
use super::weights::Weights;
use crate::{
    DType, Dim, Graph, Node, NodeId, Op, Output, RnnActivation, Shape, Tensor, TensorData,
    ValueRef, ValueType,
};
use half::f16;
use std::collections::HashMap;
use std::sync::Arc;

/// A syntax or meaning error in `.lir` text, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ParseError {
    /// Line (1-based).
    pub line: usize,
    /// Column in characters (1-based).
    pub col: usize,
    /// What was wrong or expected.
    pub message: String,
}

/// Parses `.lir` text that has no large constants (or fails naming the first digest).
pub fn parse(text: &str) -> Result<Graph, ParseError> {
    parse_with_weights(text, &Weights::default())
}

/// Parses `.lir` text, taking large constants (`sha256:` digests) from `weights`.
pub fn parse_with_weights(text: &str, weights: &Weights) -> Result<Graph, ParseError> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        weights,
        g: Graph::default(),
        values: HashMap::new(),
    };
    p.graph()?;
    if *p.peek() != Tok::Eof {
        return Err(p.expected("end of input after the graph's `}`"));
    }
    Ok(p.g)
}

type PResult<T> = Result<T, ParseError>;

struct Parser<'w> {
    toks: Vec<Token>,
    pos: usize,
    weights: &'w Weights,
    g: Graph,
    /// Defined values: name → (value, line, col of the definition).
    values: HashMap<String, (ValueRef, usize, usize)>,
}

/// A graph input declared in the header.
struct Param {
    name: String,
    ty: ValueType,
    node_name: Option<String>,
    line: usize,
    col: usize,
}

impl Parser<'_> {
    fn tok(&self) -> &Token {
        // `lex` always ends with Eof and `bump` never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek(&self) -> &Tok {
        &self.tok().tok
    }

    fn peek2(&self) -> &Tok {
        &self.toks[(self.pos + 1).min(self.toks.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.tok().clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn err_at(&self, t: &Token, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: t.line,
            col: t.col,
            message: msg.into(),
        }
    }

    /// "expected X, found Y" at the current token.
    fn expected(&self, what: &str) -> ParseError {
        self.err_at(
            self.tok(),
            format!("expected {what}, found {}", self.peek().describe()),
        )
    }

    fn is_punct(&self, c: char) -> bool {
        *self.peek() == Tok::Punct(c)
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.is_punct(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn punct(&mut self, c: char, context: &str) -> PResult<()> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{c}` {context}")))
        }
    }

    fn keyword(&mut self, kw: &str, context: &str) -> PResult<()> {
        if *self.peek() == Tok::Ident(kw.into()) {
            self.bump();
            Ok(())
        } else {
            Err(self.expected(&format!("`{kw}` {context}")))
        }
    }

    fn value_name(&mut self, what: &str) -> PResult<(String, Token)> {
        match self.peek().clone() {
            Tok::Value(s) => Ok((s, self.bump())),
            _ => Err(self.expected(what)),
        }
    }

    /// Parses a comma-separated list up to `close` (which is consumed).
    fn list<T>(
        &mut self,
        close: char,
        what: &str,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        let mut v = Vec::new();
        if self.eat_punct(close) {
            return Ok(v);
        }
        loop {
            v.push(item(self)?);
            if self.eat_punct(close) {
                return Ok(v);
            }
            if !self.eat_punct(',') {
                return Err(self.expected(&format!("`,` or `{close}` in {what}")));
            }
        }
    }

    // ---- types ----

    fn dtype(&mut self) -> PResult<DType> {
        match self.peek().clone() {
            Tok::Ident(s) => match DType::from_name(&s) {
                Some(d) => {
                    self.bump();
                    Ok(d)
                }
                None => Err(self.err_at(
                    self.tok(),
                    format!("unknown dtype `{s}` (expected one of f32, f16, f64, i8, u8, i32, i64, bool)"),
                )),
            },
            _ => Err(self.expected("a dtype (f32, i8, ...)")),
        }
    }

    fn dim(&mut self) -> PResult<Dim> {
        match self.peek().clone() {
            Tok::Num(s) => match s.parse::<usize>() {
                Ok(n) => {
                    self.bump();
                    Ok(Dim::Known(n))
                }
                Err(_) => Err(self.err_at(
                    self.tok(),
                    format!("`{s}` is not a dimension (a size, a name like N, or \"quoted\")"),
                )),
            },
            Tok::Ident(s) | Tok::Str(s) => {
                self.bump();
                Ok(Dim::Sym(s))
            }
            _ => Err(self.expected("a dimension (a size, a name like N, or \"quoted\")")),
        }
    }

    /// `f32[N,3]`, `?[*]`, `i64[]`.
    fn vtype(&mut self) -> PResult<ValueType> {
        let dtype = if self.eat_punct('?') {
            None
        } else {
            Some(self.dtype()?)
        };
        self.punct('[', "to open the shape (`[*]` when the rank is unknown)")?;
        if self.eat_punct('*') {
            self.punct(']', "after `[*`")?;
            return Ok(ValueType { dtype, shape: None });
        }
        let dims = self.list(']', "a shape", |p| p.dim())?;
        Ok(ValueType {
            dtype,
            shape: Some(Shape(dims)),
        })
    }

    // ---- numbers ----

    fn int_token(&mut self, what: &str) -> PResult<(String, Token)> {
        match self.peek().clone() {
            Tok::Num(s) => Ok((s, self.bump())),
            _ => Err(self.expected(what)),
        }
    }

    fn int<T: std::str::FromStr>(&mut self, what: &str) -> PResult<T> {
        let (s, t) = self.int_token(what)?;
        s.parse::<T>()
            .map_err(|_| self.err_at(&t, format!("expected {what}, found `{s}`")))
    }

    /// A float literal as f64 text, or NaN bits.
    fn float_tok(&mut self, what: &str) -> PResult<(FloatTok, Token)> {
        let t = self.tok().clone();
        let f = match &t.tok {
            Tok::Num(s) => FloatTok::Text(s.clone()),
            Tok::Ident(s) if s == "nan" || s == "inf" => FloatTok::Text(s.clone()),
            Tok::NanBits(b) => FloatTok::Bits(*b),
            _ => return Err(self.expected(what)),
        };
        self.bump();
        Ok((f, t))
    }

    fn f32(&mut self, what: &str) -> PResult<f32> {
        let (f, t) = self.float_tok(what)?;
        match f {
            FloatTok::Text(s) if s == "nan" => Ok(f32::NAN),
            FloatTok::Text(s) => s
                .parse::<f32>()
                .map_err(|_| self.err_at(&t, format!("expected {what}, found `{s}`"))),
            FloatTok::Bits(b) => match u32::try_from(b).map(f32::from_bits) {
                Ok(x) if x.is_nan() => Ok(x),
                _ => Err(self.err_at(
                    &t,
                    format!("nan:0x{b:x} is not the bit pattern of an f32 NaN"),
                )),
            },
        }
    }

    fn f64(&mut self, what: &str) -> PResult<f64> {
        let (f, t) = self.float_tok(what)?;
        match f {
            FloatTok::Text(s) if s == "nan" => Ok(f64::NAN),
            FloatTok::Text(s) => s
                .parse::<f64>()
                .map_err(|_| self.err_at(&t, format!("expected {what}, found `{s}`"))),
            FloatTok::Bits(b) => match f64::from_bits(b) {
                x if x.is_nan() => Ok(x),
                _ => Err(self.err_at(
                    &t,
                    format!("nan:0x{b:x} is not the bit pattern of an f64 NaN"),
                )),
            },
        }
    }

    fn f16(&mut self, what: &str) -> PResult<f16> {
        let (f, t) = self.float_tok(what)?;
        match f {
            FloatTok::Text(s) if s == "nan" => Ok(f16::NAN),
            FloatTok::Text(s) => s
                .parse::<f32>()
                .map(f16::from_f32)
                .map_err(|_| self.err_at(&t, format!("expected {what}, found `{s}`"))),
            FloatTok::Bits(b) => match u16::try_from(b).map(f16::from_bits) {
                Ok(x) if x.is_nan() => Ok(x),
                _ => Err(self.err_at(
                    &t,
                    format!("nan:0x{b:x} is not the bit pattern of an f16 NaN"),
                )),
            },
        }
    }

    fn bool(&mut self, what: &str) -> PResult<bool> {
        match self.peek() {
            Tok::Ident(s) if s == "true" => {
                self.bump();
                Ok(true)
            }
            Tok::Ident(s) if s == "false" => {
                self.bump();
                Ok(false)
            }
            _ => Err(self.expected(what)),
        }
    }

    // ---- tensors ----

    /// `f32[2,2] [1.0, 2.0, 3.0, nan]` or `f32[64,3,7,7] sha256:<hex>`.
    fn tensor(&mut self) -> PResult<Arc<Tensor>> {
        let start = self.tok().clone();
        let dtype = self.dtype()?;
        self.punct('[', "to open the tensor's shape")?;
        let shape = self.list(']', "a tensor shape", |p| {
            p.int::<usize>("a dimension size (tensor shapes are known)")
        })?;
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let Some(count) = count else {
            return Err(self.err_at(&start, "tensor shape has too many elements"));
        };
        if let Tok::Digest(d) = self.peek().clone() {
            let t = self.bump();
            if d.len() != 64
                || !d
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            {
                return Err(self.err_at(&t, "a sha256 digest is 64 lowercase hex digits"));
            }
            let Some(w) = self.weights.get(&d) else {
                return Err(self.err_at(
                    &t,
                    format!("no weights for constant sha256:{d} (large constants need the .lir.weights file beside the .lir)"),
                ));
            };
            if w.dtype() != dtype || w.shape() != shape.as_slice() {
                return Err(self.err_at(
                    &start,
                    format!(
                        "weights for sha256:{d} hold {}{:?}, the text says {dtype}{shape:?}",
                        w.dtype(),
                        w.shape()
                    ),
                ));
            }
            return Ok(w.clone());
        }
        if !self.is_punct('[') {
            return Err(self.expected("`[` with the tensor's values or a `sha256:` digest"));
        }
        let open = self.bump();
        let data = match dtype {
            DType::F32 => {
                TensorData::F32(self.list(']', "tensor values", |p| p.f32("an f32 value"))?)
            }
            DType::F16 => {
                TensorData::F16(self.list(']', "tensor values", |p| p.f16("an f16 value"))?)
            }
            DType::F64 => {
                TensorData::F64(self.list(']', "tensor values", |p| p.f64("an f64 value"))?)
            }
            DType::I8 => TensorData::I8(
                self.list(']', "tensor values", |p| p.int("an i8 value (-128..=127)"))?,
            ),
            DType::U8 => {
                TensorData::U8(self.list(']', "tensor values", |p| p.int("a u8 value (0..=255)"))?)
            }
            DType::I32 => {
                TensorData::I32(self.list(']', "tensor values", |p| p.int("an i32 value"))?)
            }
            DType::I64 => {
                TensorData::I64(self.list(']', "tensor values", |p| p.int("an i64 value"))?)
            }
            DType::Bool => {
                TensorData::Bool(self.list(']', "tensor values", |p| p.bool("`true` or `false`"))?)
            }
        };
        if data.len() != count {
            return Err(self.err_at(
                &open,
                format!(
                    "tensor of shape {shape:?} needs {count} values, {} given",
                    data.len()
                ),
            ));
        }
        Tensor::new(&shape, data)
            .map(Arc::new)
            .map_err(|e| self.err_at(&open, e.to_string()))
    }

    // ---- graph ----

    fn graph(&mut self) -> PResult<()> {
        self.keyword("graph", "to start the file")?;
        match self.peek().clone() {
            Tok::At(s) => {
                self.bump();
                self.g.name = s;
            }
            _ => return Err(self.expected("the graph name (`@name`)")),
        }
        self.punct('(', "to open the graph inputs")?;
        let params = self.list(')', "the graph inputs", |p| {
            let (name, t) = p.value_name("a graph input (`%name: f32[N,3]`)")?;
            p.punct(':', "and the input's type")?;
            let ty = p.vtype()?;
            let node_name = match p.peek().clone() {
                Tok::At(s) => {
                    p.bump();
                    Some(s)
                }
                _ => None,
            };
            Ok(Param {
                name,
                ty,
                node_name,
                line: t.line,
                col: t.col,
            })
        })?;
        for (i, a) in params.iter().enumerate() {
            if let Some(b) = params[..i].iter().find(|b| b.name == a.name) {
                return Err(ParseError {
                    line: a.line,
                    col: a.col,
                    message: format!(
                        "duplicate value %{} (first defined at {}:{})",
                        super::print::name(&a.name),
                        b.line,
                        b.col
                    ),
                });
            }
        }
        if *self.peek() != Tok::Arrow {
            return Err(self.expected("`->` and the graph outputs"));
        }
        self.bump();
        self.punct('(', "to open the graph outputs")?;
        let outs = self.list(')', "the graph outputs", |p| {
            p.value_name("a graph output (`%name`)")
        })?;
        self.punct('{', "to open the graph body")?;

        // With no `input` line in the body (outside nested graphs), graph inputs come first.
        let mut explicit = false;
        let mut depth = 0usize;
        for w in self.toks[self.pos..].windows(2) {
            match &w[0].tok {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') if depth == 0 => break,
                Tok::Punct('}') => depth -= 1,
                Tok::Ident(k) if k == "input" && depth == 0 => {
                    explicit |= matches!(w[1].tok, Tok::Value(_));
                }
                _ => {}
            }
        }
        let mut placed = 0;
        if !explicit {
            while placed < params.len() {
                self.add_input(&params[placed])?;
                placed += 1;
            }
        }
        loop {
            let t = self.tok().clone();
            match &t.tok {
                Tok::Ident(k) if k == "return" => break,
                Tok::Ident(k) if k == "input" && matches!(self.peek2(), Tok::Value(_)) => {
                    self.bump();
                    let (name, vt) = self.value_name("a graph input")?;
                    let Some(k) = params.iter().position(|p| p.name == name) else {
                        return Err(self.err_at(
                            &vt,
                            format!(
                                "%{} is not a graph input of the header",
                                super::print::name(&name)
                            ),
                        ));
                    };
                    if k < placed {
                        return Err(self.err_at(
                            &vt,
                            format!(
                                "graph input %{} is already placed",
                                super::print::name(&name)
                            ),
                        ));
                    }
                    while placed <= k {
                        self.add_input(&params[placed])?;
                        placed += 1;
                    }
                }
                Tok::Value(_) | Tok::Punct('(') => self.node_line()?,
                _ => {
                    return Err(self.expected("a node line (`%y = op(%x)`), `input %x` or `return`"))
                }
            }
        }
        let ret = self.bump();
        if let Some(p) = params.get(placed) {
            return Err(self.err_at(
                &ret,
                format!(
                    "graph input %{} is never placed (with `input` lines in the body, every graph input needs one)",
                    super::print::name(&p.name)
                ),
            ));
        }
        let mut rets = Vec::new();
        if !self.is_punct('}') {
            loop {
                rets.push(self.value_name("a value to return")?);
                if !self.eat_punct(',') {
                    break;
                }
            }
        }
        let header: Vec<&str> = outs.iter().map(|(n, _)| n.as_str()).collect();
        let body: Vec<&str> = rets.iter().map(|(n, _)| n.as_str()).collect();
        if header != body {
            let list = |v: &[&str]| {
                v.iter()
                    .map(|n| format!("%{}", super::print::name(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(self.err_at(
                &ret,
                format!(
                    "`return {}` does not match the header's outputs ({})",
                    list(&body),
                    list(&header)
                ),
            ));
        }
        let mut outputs = Vec::new();
        for (name, t) in &rets {
            outputs.push(self.use_value(name, t)?);
        }
        self.g.set_outputs(outputs);
        self.punct('}', "to close the graph after `return`")?;
        Ok(())
    }

    /// A nested graph (an op's body), parsed with its own values: a body sees no value of
    /// the graph around it.
    fn subgraph(&mut self) -> PResult<Arc<Graph>> {
        let outer = std::mem::take(&mut self.g);
        let outer_values = std::mem::take(&mut self.values);
        let r = self.graph();
        let body = std::mem::replace(&mut self.g, outer);
        self.values = outer_values;
        r.map(|()| Arc::new(body))
    }

    fn add_input(&mut self, p: &Param) -> PResult<()> {
        let v = self.g.add_input(p.name.clone(), p.ty.clone());
        if let Some(n) = &p.node_name {
            self.g.node_mut(v.node).name = n.clone();
        }
        self.values.insert(p.name.clone(), (v, p.line, p.col));
        Ok(())
    }

    fn use_value(&self, name: &str, t: &Token) -> PResult<ValueRef> {
        match self.values.get(name) {
            Some((v, _, _)) => Ok(*v),
            None => Err(self.err_at(
                t,
                format!(
                    "use of undefined value %{} (values must be defined above their use)",
                    super::print::name(name)
                ),
            )),
        }
    }

    /// `%a, %b = op(%x, _, %y) {k=v} : t1, t2 @name`, or `() = op(...)` for no outputs.
    fn node_line(&mut self) -> PResult<()> {
        let mut lhs: Vec<(String, Token)> = Vec::new();
        if self.eat_punct('(') {
            self.punct(')', "(a node without outputs is written `() = op(...)`)")?;
        } else {
            loop {
                let (name, t) = self.value_name("a value name")?;
                if let Some((_, l, c)) = self.values.get(&name) {
                    return Err(self.err_at(
                        &t,
                        format!(
                            "duplicate value %{} (first defined at {l}:{c})",
                            super::print::name(&name)
                        ),
                    ));
                }
                if let Some((_, first)) = lhs.iter().find(|(n, _)| *n == name) {
                    return Err(self.err_at(
                        &t,
                        format!(
                            "duplicate value %{} (first defined at {}:{})",
                            super::print::name(&name),
                            first.line,
                            first.col
                        ),
                    ));
                }
                lhs.push((name, t));
                if !self.eat_punct(',') {
                    break;
                }
            }
        }
        self.punct('=', "after the node's outputs")?;
        let op_tok = self.tok().clone();
        let Tok::Ident(op_name) = op_tok.tok.clone() else {
            return Err(self.expected("an op name"));
        };
        let Some(mut op) = Op::from_name(&op_name) else {
            return Err(self.err_at(&op_tok, format!("unknown op `{op_name}`")));
        };
        self.bump();
        let is_const = matches!(op, Op::Const(_));
        let mut args: Vec<Option<ValueRef>> = Vec::new();
        if !is_const || self.is_punct('(') {
            self.punct('(', &format!("to open the inputs of {op_name}"))?;
            args = self.list(')', "the node's inputs", |p| match p.peek().clone() {
                Tok::Ident(s) if s == "_" => {
                    p.bump();
                    Ok(None)
                }
                Tok::Value(name) => {
                    let t = p.bump();
                    p.use_value(&name, &t).map(Some)
                }
                _ => Err(p.expected("an input (`%name`, or `_` for an absent optional input)")),
            })?;
        }
        let default_ty = if is_const {
            let t = self.tensor()?;
            let ty = ValueType::new(t.dtype(), Shape::known(t.shape()));
            op = Op::Const(t);
            ty
        } else {
            let attrs = if self.is_punct('{') {
                self.attr_block()?
            } else {
                Vec::new()
            };
            self.apply_attrs(&mut op, &op_name, &op_tok, attrs)?;
            ValueType::unknown()
        };
        let mut types = vec![default_ty; lhs.len()];
        if self.is_punct(':') {
            let colon = self.bump();
            let mut given = vec![self.vtype()?];
            while self.eat_punct(',') {
                given.push(self.vtype()?);
            }
            if given.len() != lhs.len() {
                return Err(self.err_at(
                    &colon,
                    format!(
                        "{} output(s) but {} type(s) after `:` (give one type per output)",
                        lhs.len(),
                        given.len()
                    ),
                ));
            }
            types = given;
        }
        let node_name = match self.peek().clone() {
            Tok::At(s) => {
                self.bump();
                s
            }
            _ => lhs.first().map(|(n, _)| n.clone()).unwrap_or_default(),
        };
        let outputs: Vec<Output> = lhs
            .iter()
            .zip(types)
            .map(|((name, _), ty)| Output {
                name: name.clone(),
                ty,
            })
            .collect();
        let node = Node {
            name: node_name,
            op,
            num_inputs: args.len(),
            outputs,
        };
        let id = self.add_node(node, &args);
        for (i, (name, t)) in lhs.into_iter().enumerate() {
            self.values.insert(
                name,
                (
                    ValueRef {
                        node: id,
                        output: i,
                    },
                    t.line,
                    t.col,
                ),
            );
        }
        Ok(())
    }

    /// Adds a node; a constant without inputs goes through `add_const` so that the parsed graph
    /// interns it, unless an equal constant is already there (then it stays a separate node).
    fn add_node(&mut self, node: Node, args: &[Option<ValueRef>]) -> NodeId {
        if let (Op::Const(t), true) = (&node.op, args.is_empty()) {
            let before = self.g.len();
            let v = self.g.add_const(node.name.clone(), t.clone());
            if self.g.len() > before {
                *self.g.node_mut(v.node) = node;
                return v.node;
            }
        }
        let Node {
            name, op, outputs, ..
        } = node;
        self.g.add_node(name, op, args, outputs)
    }

    /// `{key=value, ...}`: keys with the token range of their values (parsed later, typed).
    fn attr_block(&mut self) -> PResult<Vec<RawAttr>> {
        self.bump();
        let mut out: Vec<RawAttr> = Vec::new();
        if self.eat_punct('}') {
            return Ok(out);
        }
        loop {
            let key_tok = self.tok().clone();
            let Tok::Ident(key) = key_tok.tok.clone() else {
                return Err(self.expected("an attribute name"));
            };
            self.bump();
            if let Some(first) = out.iter().find(|a| a.key == key) {
                return Err(self.err_at(
                    &key_tok,
                    format!(
                        "attribute `{key}` given twice (first at {}:{})",
                        first.tok.line, first.tok.col
                    ),
                ));
            }
            self.punct('=', &format!("after attribute `{key}`"))?;
            let start = self.pos;
            // Skip the value: everything up to `,` or `}` outside brackets (a nested graph
            // has parentheses and braces).
            let mut depth = 0usize;
            loop {
                match self.peek() {
                    Tok::Punct('[' | '(' | '{') => depth += 1,
                    Tok::Punct(']' | ')') => depth = depth.saturating_sub(1),
                    Tok::Punct('}') if depth > 0 => depth -= 1,
                    Tok::Punct(',' | '}') if depth == 0 => break,
                    Tok::Eof => return Err(self.expected("`}` to close the attributes")),
                    _ => {}
                }
                self.bump();
            }
            if self.pos == start {
                return Err(self.expected(&format!("a value for attribute `{key}`")));
            }
            out.push(RawAttr {
                key,
                tok: key_tok,
                start,
                end: self.pos,
            });
            if self.eat_punct('}') {
                return Ok(out);
            }
            self.bump(); // the `,`
        }
    }

    fn apply_attrs(
        &mut self,
        op: &mut Op,
        op_name: &str,
        op_tok: &Token,
        attrs: Vec<RawAttr>,
    ) -> PResult<()> {
        let resume = self.pos;
        let mut known: Vec<&'static str> = Vec::new();
        let mut v = AttrParser {
            p: self,
            attrs,
            err: None,
            known: &mut known,
            op_name,
            op_tok: op_tok.clone(),
        };
        visit(op, &mut v);
        let AttrParser { attrs, err, .. } = v;
        self.pos = resume;
        if let Some(e) = err {
            return Err(e);
        }
        if let Some(a) = attrs.first() {
            let expected = if known.is_empty() {
                format!("{op_name} has no attributes")
            } else {
                format!("{op_name} takes {}", known.join(", "))
            };
            return Err(self.err_at(
                &a.tok,
                format!("unknown attribute `{}` ({expected})", a.key),
            ));
        }
        Ok(())
    }
}

enum FloatTok {
    Text(String),
    Bits(u64),
}

/// One `key=value` of an attribute block; the value is tokens `start..end`.
struct RawAttr {
    key: String,
    tok: Token,
    start: usize,
    end: usize,
}

/// Fills an op's attributes from the raw block, typed by the visited field.
struct AttrParser<'a, 'p, 'w> {
    p: &'p mut Parser<'w>,
    attrs: Vec<RawAttr>,
    err: Option<ParseError>,
    known: &'a mut Vec<&'static str>,
    op_name: &'a str,
    op_tok: Token,
}

impl AttrParser<'_, '_, '_> {
    /// Parses attribute `key` with `f` if present; `None` when absent (or after an error).
    fn get<T>(
        &mut self,
        key: &'static str,
        what: &str,
        f: impl FnOnce(&mut Parser) -> PResult<T>,
    ) -> Option<T> {
        self.known.push(key);
        if self.err.is_some() {
            return None;
        }
        let i = self.attrs.iter().position(|a| a.key == key)?;
        let a = self.attrs.remove(i);
        self.p.pos = a.start;
        let r = f(self.p).and_then(|v| {
            if self.p.pos == a.end {
                Ok(v)
            } else {
                Err(self
                    .p
                    .expected(&format!("`,` or `}}` after the value of `{key}` ({what})")))
            }
        });
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.err = Some(e);
                None
            }
        }
    }

    /// Stores the parsed value, the default, or a "missing" error.
    fn set<T>(&mut self, key: &'static str, v: &mut T, got: Option<T>, default: Option<T>) {
        match (got, default) {
            (Some(x), _) | (None, Some(x)) => *v = x,
            (None, None) => {
                if self.err.is_none() {
                    let t = self.op_tok.clone();
                    self.err = Some(
                        self.p
                            .err_at(&t, format!("{} needs attribute `{key}`", self.op_name)),
                    );
                }
            }
        }
    }
}

fn usize_list(p: &mut Parser) -> PResult<Vec<usize>> {
    p.punct('[', "to open a list")?;
    p.list(']', "a list", |p| p.int::<usize>("a non-negative integer"))
}

fn i64_list(p: &mut Parser) -> PResult<Vec<i64>> {
    p.punct('[', "to open a list")?;
    p.list(']', "a list", |p| p.int::<i64>("an integer"))
}

/// `[sigmoid, leaky_relu(0.1), ...]`: each word with exactly the parameters it takes.
fn activation_list(p: &mut Parser) -> PResult<Vec<RnnActivation>> {
    p.punct('[', "to open a list")?;
    p.list(']', "a list of activations", |p| {
        let t = p.tok().clone();
        let Tok::Ident(w) = t.tok.clone() else {
            return Err(p.expected("an activation (`sigmoid`, `tanh`, `leaky_relu(0.1)`, ...)"));
        };
        let Some(bare) = activation_from_word(&w, &[]) else {
            return Err(p.err_at(&t, format!("`{w}` is not a recurrent activation")));
        };
        p.bump();
        let (a, b) = bare.params();
        let want = usize::from(a.is_some()) + usize::from(b.is_some());
        let params = if want > 0 {
            p.punct('(', &format!("after `{w}` (it takes {want} parameter(s))"))?;
            p.list(')', "activation parameters", |p| p.f32("a number"))?
        } else {
            vec![]
        };
        if params.len() != want {
            return Err(p.err_at(
                &t,
                format!("`{w}` takes {want} parameter(s), got {}", params.len()),
            ));
        }
        activation_from_word(&w, &params).ok_or_else(|| p.err_at(&t, "unknown activation"))
    })
}

impl Visitor for AttrParser<'_, '_, '_> {
    fn usize(&mut self, key: &'static str, v: &mut usize, default: Option<usize>) {
        let got = self.get(key, "a non-negative integer", |p| {
            p.int("a non-negative integer")
        });
        self.set(key, v, got, default);
    }
    fn u32(&mut self, key: &'static str, v: &mut u32, default: Option<u32>) {
        let got = self.get(key, "an unsigned 32-bit integer", |p| {
            p.int("an unsigned 32-bit integer")
        });
        self.set(key, v, got, default);
    }
    fn i64(&mut self, key: &'static str, v: &mut i64, default: Option<i64>) {
        let got = self.get(key, "an integer", |p| p.int("an integer"));
        self.set(key, v, got, default);
    }
    fn opt_i64(&mut self, key: &'static str, v: &mut Option<i64>) {
        let got = self.get(key, "an integer or `none`", |p| {
            if *p.peek() == Tok::Ident("none".into()) {
                p.bump();
                Ok(None)
            } else {
                p.int("an integer or `none`").map(Some)
            }
        });
        self.set(key, v, got, Some(None));
    }
    fn f32(&mut self, key: &'static str, v: &mut f32, default: Option<f32>) {
        let got = self.get(key, "a number", |p| p.f32("a number"));
        self.set(key, v, got, default);
    }
    fn opt_f32(&mut self, key: &'static str, v: &mut Option<f32>) {
        let got = self.get(key, "a number or `none`", |p| {
            if *p.peek() == Tok::Ident("none".into()) {
                p.bump();
                Ok(None)
            } else {
                p.f32("a number or `none`").map(Some)
            }
        });
        self.set(key, v, got, Some(None));
    }
    fn activations(
        &mut self,
        key: &'static str,
        v: &mut Vec<RnnActivation>,
        default: Vec<RnnActivation>,
    ) {
        let got = self.get(key, "a list of activations", activation_list);
        self.set(key, v, got, Some(default));
    }
    fn bool(&mut self, key: &'static str, v: &mut bool, default: Option<bool>) {
        let got = self.get(key, "`true` or `false`", |p| p.bool("`true` or `false`"));
        self.set(key, v, got, default);
    }
    fn usizes(&mut self, key: &'static str, v: &mut Vec<usize>) {
        let got = self.get(key, "a list of non-negative integers", usize_list);
        self.set(key, v, got, Some(vec![]));
    }
    fn i64s(&mut self, key: &'static str, v: &mut Vec<i64>) {
        let got = self.get(key, "a list of integers", i64_list);
        self.set(key, v, got, Some(vec![]));
    }
    fn string(&mut self, key: &'static str, v: &mut String) {
        let got = self.get(key, "a quoted string", |p| match p.peek().clone() {
            Tok::Str(s) => {
                p.bump();
                Ok(s)
            }
            _ => Err(p.expected("a quoted string")),
        });
        self.set(key, v, got, None);
    }
    fn word<W: Word>(&mut self, key: &'static str, v: &mut W, default: Option<W>) {
        let words = W::ALL
            .iter()
            .map(|w| w.word())
            .collect::<Vec<_>>()
            .join(", ");
        let got = self.get(key, "a word", |p| match p.peek().clone() {
            Tok::Ident(s) => match W::from_word(&s) {
                Some(w) => {
                    p.bump();
                    Ok(w)
                }
                None => Err(p.err_at(
                    p.tok(),
                    format!("`{s}` is not a valid `{key}` (expected one of {words})"),
                )),
            },
            _ => Err(p.expected(&format!("one of {words}"))),
        });
        self.set(key, v, got, default);
    }
    fn tensor(&mut self, key: &'static str, v: &mut Arc<Tensor>) {
        let got = self.get(key, "a tensor literal", |p| p.tensor());
        self.set(key, v, got, None);
    }
    fn graph(&mut self, key: &'static str, v: &mut Arc<Graph>) {
        let got = self.get(key, "a nested graph", |p| p.subgraph());
        self.set(key, v, got, None);
    }
}
