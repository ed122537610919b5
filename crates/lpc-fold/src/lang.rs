//! The egg language of lpc's IR: op heads whose attributes, constants and absent inputs are
//! leaf children, so that rules can match any Conv and carry its attributes to the right side.

use egg::{Id, Language};
use lpc_ir::{Op, OpKind, Tensor};
use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A constant leaf: the tensor plus a content hash (equality is by content).
#[derive(Clone, Debug)]
pub struct ConstKey {
    hash: u64,
    /// The tensor.
    pub t: Arc<Tensor>,
}

impl ConstKey {
    /// Wraps a tensor, hashing its dtype, shape and bytes.
    pub fn new(t: Arc<Tensor>) -> ConstKey {
        let mut h = DefaultHasher::new();
        t.dtype().hash(&mut h);
        t.shape().hash(&mut h);
        t.to_le_bytes().hash(&mut h);
        ConstKey {
            hash: h.finish(),
            t,
        }
    }
}

impl PartialEq for ConstKey {
    fn eq(&self, o: &ConstKey) -> bool {
        self.hash == o.hash && (Arc::ptr_eq(&self.t, &o.t) || self.t.same_content(&o.t))
    }
}
impl Eq for ConstKey {}
impl Hash for ConstKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.hash.hash(h)
    }
}
impl PartialOrd for ConstKey {
    fn partial_cmp(&self, o: &ConstKey) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ConstKey {
    fn cmp(&self, o: &ConstKey) -> Ordering {
        self.hash.cmp(&o.hash).then_with(|| {
            if self == o {
                Ordering::Equal
            } else {
                (self.t.dtype(), self.t.shape(), self.t.to_le_bytes()).cmp(&(
                    o.t.dtype(),
                    o.t.shape(),
                    o.t.to_le_bytes(),
                ))
            }
        })
    }
}

/// An attribute leaf: the op (with its attribute fields) of the node it belongs to, keyed by
/// its debug text (ops hold f32 fields, so they have no `Eq`/`Hash` of their own).
#[derive(Clone, Debug)]
pub struct AttrKey {
    key: String,
    /// The op carrying the attributes.
    pub op: Arc<Op>,
}

impl AttrKey {
    /// Wraps an op.
    pub fn new(op: Op) -> AttrKey {
        AttrKey {
            key: format!("{op:?}"),
            op: Arc::new(op),
        }
    }
}
impl PartialEq for AttrKey {
    fn eq(&self, o: &AttrKey) -> bool {
        self.key == o.key
    }
}
impl Eq for AttrKey {}
impl Hash for AttrKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.key.hash(h)
    }
}
impl PartialOrd for AttrKey {
    fn partial_cmp(&self, o: &AttrKey) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for AttrKey {
    fn cmp(&self, o: &AttrKey) -> Ordering {
        self.key.cmp(&o.key)
    }
}

/// What an op head computes: an lpc op, or lpc-fold's canonical quantize/dequantize.
///
/// Equality, hashing and order go by [`HeadKind::name`], so e-nodes sort (and tie-break in
/// extraction) as they did when heads were strings.
#[derive(Clone, Copy, Debug)]
pub enum HeadKind {
    /// An lpc op (never `input` or `const`: those are leaves).
    Op(OpKind),
    /// The canonical quantize head: (q x scale zero_point), parameters broadcast to x.
    Q,
    /// The canonical dequantize head: (dq x scale zero_point), parameters broadcast to x.
    Dq,
}

impl HeadKind {
    /// The head's name in rules and messages (`Op::name`, or `q`/`dq`).
    pub fn name(self) -> &'static str {
        match self {
            HeadKind::Op(k) => k.name(),
            HeadKind::Q => Q,
            HeadKind::Dq => DQ,
        }
    }

    /// The head a rule may write under this name (`q`, `dq`, or an op other than
    /// `input`/`const`).
    pub fn from_rule_name(name: &str) -> Option<HeadKind> {
        match name {
            Q => Some(HeadKind::Q),
            DQ => Some(HeadKind::Dq),
            _ => match OpKind::from_name(name)? {
                OpKind::Input | OpKind::Const => None,
                k => Some(HeadKind::Op(k)),
            },
        }
    }

    /// True when the head's first child is an attribute leaf.
    pub fn has_attrs(self) -> bool {
        match self {
            HeadKind::Op(k) => k.has_attrs(),
            HeadKind::Q | HeadKind::Dq => false,
        }
    }

    /// Number of input slots (required, max) of the head; `None` max is variadic.
    pub fn arity(self) -> (usize, Option<usize>) {
        match self {
            HeadKind::Op(k) => k.arity(),
            HeadKind::Q | HeadKind::Dq => (3, Some(3)),
        }
    }
}

impl PartialEq for HeadKind {
    fn eq(&self, o: &HeadKind) -> bool {
        self.name() == o.name()
    }
}
impl Eq for HeadKind {}
impl Hash for HeadKind {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name().hash(h)
    }
}
impl PartialOrd for HeadKind {
    fn partial_cmp(&self, o: &HeadKind) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for HeadKind {
    fn cmp(&self, o: &HeadKind) -> Ordering {
        self.name().cmp(o.name())
    }
}
impl fmt::Display for HeadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The head of an e-node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Head {
    /// An op head with `nout` outputs (more than one: a tuple read by `Out`).
    /// Children: the attribute leaf first when the op has attributes, then the input slots.
    Op {
        /// What the head computes.
        kind: HeadKind,
        /// Number of outputs.
        nout: usize,
    },
    /// Output `k` of a tuple node (one child).
    Out(usize),
    /// An attribute leaf.
    Attr(AttrKey),
    /// A constant leaf.
    Const(ConstKey),
    /// Graph input number `k`.
    Input(usize),
    /// An unconnected optional input (`none` in patterns).
    Absent,
}

/// One e-node: a head and its children.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FNode {
    /// The head.
    pub head: Head,
    /// Children e-classes.
    pub children: Vec<Id>,
}

/// The discriminant egg uses to pre-filter matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Disc {
    /// An op head.
    Op(HeadKind, usize),
    /// Any other head kind (leaves and projections).
    Other(u8, usize),
}

impl Language for FNode {
    type Discriminant = Disc;

    fn discriminant(&self) -> Disc {
        match &self.head {
            Head::Op { kind, nout } => Disc::Op(*kind, *nout),
            Head::Out(k) => Disc::Other(0, *k),
            Head::Attr(_) => Disc::Other(1, 0),
            Head::Const(_) => Disc::Other(2, 0),
            Head::Input(k) => Disc::Other(3, *k),
            Head::Absent => Disc::Other(4, 0),
        }
    }

    fn matches(&self, other: &FNode) -> bool {
        self.head == other.head && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

impl fmt::Display for FNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.head {
            Head::Op { kind, .. } => f.write_str(kind.name()),
            Head::Out(k) => write!(f, "out{k}"),
            Head::Attr(a) => write!(f, "<{} attrs>", a.op.name()),
            Head::Const(c) => write!(f, "<const {}>", c.t),
            Head::Input(k) => write!(f, "<input {k}>"),
            Head::Absent => f.write_str("none"),
        }
    }
}

/// Name of the canonical quantize head: (q x scale zero_point), parameters broadcast to x.
pub const Q: &str = "q";
/// Name of the canonical dequantize head: (dq x scale zero_point), parameters broadcast to x.
pub const DQ: &str = "dq";
