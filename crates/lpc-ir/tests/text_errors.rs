//! `.lir` parse errors (line:col and message), a never-panic test over mutated texts, and
//! weights sidecar corruption.

use lpc_ir::text::{parse, parse_with_weights, print_with_weights, Weights};
use lpc_ir::*;
use std::sync::Arc;

fn err(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Ok(_) => panic!("parsed:\n{text}"),
        Err(e) => (e.line, e.col, e.message),
    }
}

const HEAD: &str = "graph @g(%x: f32[N,4]) -> (%y) {\n";

#[test]
fn errors_have_line_col_and_say_what_is_wrong() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("", 1, 1, "expected `graph` to start the file, found end of input"),
        ("graf @g() -> () {\n return\n}", 1, 1, "expected `graph`"),
        ("graph g() -> () {\n return\n}", 1, 7, "expected the graph name (`@name`), found `g`"),
        ("graph @g(%x: f33[4]) -> (%x) {\n return %x\n}", 1, 14, "unknown dtype `f33`"),
        ("graph @g(%x: f32[4) -> (%x) {\n return %x\n}", 1, 19, "expected `,` or `]` in a shape, found `)`"),
        ("graph @g(%x: f32[4], %x: f32[4]) -> (%x) {\n return %x\n}", 1, 22, "duplicate value %x (first defined at 1:10)"),
        ("graph @g() -> () {\n  %y = frobnicate()\n  return\n}", 2, 8, "unknown op `frobnicate`"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = relu(%z)\n  return %y\n}", 2, 13, "use of undefined value %z"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = relu(%y)\n  return %y\n}", 2, 13, "use of undefined value %y"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  %x = relu(%x)\n  return %x\n}", 2, 3, "duplicate value %x (first defined at 1:10)"),
        ("graph @g(%x: ?[*]) -> (%a) {\n  %a, %a = split(%x) {num_outputs=2}\n  return %a\n}", 2, 7, "duplicate value %a (first defined at 2:3)"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = conv(%x) {strides=[1,1], foo=3}\n  return %y\n}", 2, 33, "unknown attribute `foo` (conv takes kernel, strides, pads, dilations, group, auto_pad)"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = relu(%x) {alpha=1.0}\n  return %y\n}", 2, 18, "unknown attribute `alpha` (relu has no attributes)"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = cast(%x)\n  return %y\n}", 2, 8, "cast needs attribute `to`"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = cast(%x) {to=f128}\n  return %y\n}", 2, 21, "`f128` is not a valid `to` (expected one of f32, f16, f64, i8, u8, i32, i64, bool)"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = conv(%x) {group=-1}\n  return %y\n}", 2, 24, "expected a non-negative integer, found `-1`"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = conv(%x) {group=1 2}\n  return %y\n}", 2, 26, "after the value of `group`"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = conv(%x) {group=1, group=2}\n  return %y\n}", 2, 27, "attribute `group` given twice (first at 2:18)"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = conv(%x) {auto_pad=same}\n  return %y\n}", 2, 27, "`same` is not a valid `auto_pad`"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = gemm(%x, %x) {alpha=fast}\n  return %y\n}", 2, 28, "expected a number, found `fast`"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = relu(%x) : f32[1], f32[2]\n  return %y\n}", 2, 17, "1 output(s) but 2 type(s)"),
        ("graph @g() -> (%c) {\n  %c = const u8[2] [1, 256]\n  return %c\n}", 2, 24, "expected a u8 value (0..=255), found `256`"),
        ("graph @g() -> (%c) {\n  %c = const f32[2] [1.0]\n  return %c\n}", 2, 21, "tensor of shape [2] needs 2 values, 1 given"),
        ("graph @g() -> (%c) {\n  %c = const bool[1] [1]\n  return %c\n}", 2, 23, "expected `true` or `false`, found `1`"),
        ("graph @g() -> (%c) {\n  %c = const f32[N] [1.0]\n  return %c\n}", 2, 18, "expected a dimension size (tensor shapes are known), found `N`"),
        ("graph @g() -> (%c) {\n  %c = const f32[1] [nan:0x1]\n  return %c\n}", 2, 22, "nan:0x1 is not the bit pattern of an f32 NaN"),
        ("graph @g() -> (%c) {\n  %c = const f32[17] sha256:abc\n  return %c\n}", 2, 22, "a sha256 digest is 64 lowercase hex digits"),
        ("graph @g(%x: ?[*]) -> (%y) {\n  %y = relu(%x)\n  return %x\n}", 3, 3, "`return %x` does not match the header's outputs (%y)"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  return %x\n}\nextra", 4, 1, "expected end of input after the graph's `}`"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  %y = relu(%x)\n", 3, 1, "expected a node line"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  %y = relu(%x\n  return %x\n}", 3, 3, "expected `,` or `)` in the node's inputs, found `return`"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  %\"open = relu(%x)\n}", 2, 4, "unterminated string"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  %\"a\\q\" = relu(%x)\n}", 2, 6, "unknown escape"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  % = relu(%x)\n}", 2, 3, "expected a name after `%`"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  %y = relu(%x) $\n}", 2, 17, "unexpected character '$'"),
        ("graph @g(%a: ?[*], %b: ?[*]) -> (%a) {\n  input %a\n  return %a\n}", 3, 3, "graph input %b is never placed"),
        ("graph @g(%a: ?[*], %b: ?[*]) -> (%a) {\n  input %b\n  input %a\n  return %a\n}", 3, 9, "graph input %a is already placed"),
        ("graph @g(%a: ?[*]) -> (%a) {\n  input %q\n  return %a\n}", 2, 9, "%q is not a graph input"),
        ("graph @g(%x: ?[*]) -> (%x) {\n  %y = shape_of(%x) {end=nothing}\n  return %x\n}", 2, 26, "expected an integer or `none`"),
    ];
    let mut bad = vec![];
    for &(text, line, col, msg) in cases {
        let (l, c, m) = err(text);
        if !m.contains(msg) || (l, c) != (line, col) {
            bad.push(format!(
                "{text:?}\n  got  {l}:{c}: {m}\n  want {line}:{col}: {msg}"
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let _ = HEAD;
}

/// A text that uses most of the syntax: weights, quoting, types, attributes, placement.
fn rich_graph() -> (String, Weights) {
    let mut g = Graph::new("rich/graph");
    let c0 = g.add_const(
        "c0",
        Tensor::from_f32(&[3], vec![f32::NAN, -0.0, 1e-7]).unwrap(),
    );
    let x = g.add_input(
        "x",
        ValueType::new(DType::F32, Shape(vec![Dim::Sym("N".into()), Dim::Known(3)])),
    );
    let w = g.add_const(
        "gpu_0/w",
        Tensor::from_i8(&[20], (0..20).map(|i| i as i8).collect()).unwrap(),
    );
    let b = g.add_const("b", Tensor::from_bool(&[2], vec![true, false]).unwrap());
    let conv = Op::Conv(ConvAttrs {
        strides: vec![2, 2],
        pads: vec![1, 1, 1, 1],
        group: 3,
        auto_pad: AutoPad::SameLower,
        ..ConvAttrs::default()
    });
    let y = g.add_node(
        "conv \"1\"",
        conv,
        &[Some(x), Some(w), None],
        vec![Output {
            name: "481".into(),
            ty: ValueType::unknown(),
        }],
    );
    let mp = g.add_node(
        "mp",
        Op::MaxPool {
            pool: PoolAttrs {
                kernel: vec![2],
                strides: vec![],
                pads: vec![],
                dilations: vec![],
                ceil_mode: true,
                auto_pad: AutoPad::NotSet,
            },
            storage_order: 1,
        },
        &[Some(ValueRef::first(y))],
        vec![
            Output::named("p"),
            Output {
                name: "i".into(),
                ty: ValueType {
                    dtype: Some(DType::I64),
                    shape: None,
                },
            },
        ],
    );
    let r = g.add_node(
        "r",
        Op::Resize(ResizeAttrs {
            mode: ResizeMode::Cubic,
            coord: CoordTransform::AlignCorners,
            nearest: NearestMode::Ceil,
            cubic_a: -0.5,
            exclude_outside: true,
            extrapolation: f32::NEG_INFINITY,
            antialias: true,
            axes: vec![2, -1],
            policy: AspectPolicy::NotSmaller,
        }),
        &[Some(ValueRef::first(mp)), None, Some(c0), Some(b)],
        vec![Output::named("r")],
    );
    let k = g.add_node(
        "k",
        Op::ConstantOfShape {
            value: Arc::new(Tensor::scalar_i64(-5)),
        },
        &[Some(ValueRef {
            node: mp,
            output: 1,
        })],
        vec![Output::named("k")],
    );
    g.set_outputs(vec![ValueRef::first(r), ValueRef::first(k)]);
    let (text, w) = print_with_weights(&g);
    assert!(text.contains("input %x"), "{text}");
    let back = parse_with_weights(&text, &w).unwrap();
    assert_eq!(print_with_weights(&back).0, text);
    (text, w)
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn no_panic(text: &str, w: &Weights) {
    let r = std::panic::catch_unwind(|| parse_with_weights(text, w).map(|_| ()));
    assert!(r.is_ok(), "parser panicked on:\n{text}");
}

#[test]
fn parser_never_panics_on_mutated_text() {
    let (text, w) = rich_graph();
    let chars: Vec<char> = text.chars().collect();
    // Every truncation.
    // Every truncation before the closing `}` (the final newline is optional).
    for n in 0..text.trim_end().chars().count() {
        let t: String = chars[..n].iter().collect();
        no_panic(&t, &w);
        assert!(parse_with_weights(&t, &w).is_err());
    }
    // Random deletions, insertions, replacements and swaps of characters and whole tokens.
    let alphabet: Vec<char> = "%@\"\\#()[]{},=:?*_-+.0123456789eEaxnNfiu \n\u{e9}"
        .chars()
        .collect();
    let pieces = [
        "nan:0x",
        "sha256:",
        "[*]",
        "{",
        "}",
        "->",
        "%x",
        "_",
        "input %x",
        "return",
        "const",
        "1e999",
        "18446744073709551616",
        "-",
        "\"",
        "\\u{",
        "\\u{d800}",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20000 {
        let mut c = chars.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(c.len() + 1);
            match rng.below(5) {
                0 if at < c.len() => {
                    c.remove(at);
                }
                1 => c.insert(at, alphabet[rng.below(alphabet.len())]),
                2 if at < c.len() => c[at] = alphabet[rng.below(alphabet.len())],
                3 => {
                    for (k, ch) in pieces[rng.below(pieces.len())].chars().enumerate() {
                        c.insert(at + k, ch);
                    }
                }
                _ => {
                    let b = rng.below(c.len());
                    if at < c.len() {
                        c.swap(at, b);
                    }
                }
            }
        }
        let t: String = c.into_iter().collect();
        no_panic(&t, &w);
    }
    // Line-level mutations: drop, duplicate or swap lines.
    let lines: Vec<&str> = text.lines().collect();
    for i in 0..lines.len() {
        for j in 0..lines.len() {
            let mut l = lines.clone();
            l.swap(i, j);
            no_panic(&l.join("\n"), &w);
            let mut l = lines.clone();
            l.insert(j, lines[i]);
            no_panic(&l.join("\n"), &w);
        }
        let mut l = lines.clone();
        l.remove(i);
        no_panic(&l.join("\n"), &w);
        no_panic(&l.join("\n"), &Weights::new());
    }
}

#[test]
fn weights_roundtrip_and_corruption() {
    let (_, w) = rich_graph();
    let mut w2 = w.clone();
    w2.insert(Arc::new(
        Tensor::from_f64(&[2, 9], (0..18).map(|i| i as f64).collect()).unwrap(),
    ));
    w2.insert(Arc::new(Tensor::from_bool(&[17], vec![true; 17]).unwrap()));
    let bytes = w2.to_bytes();
    let back = Weights::from_bytes(&bytes).unwrap();
    assert_eq!(back.len(), w2.len());
    for ((da, ta), (db, tb)) in w2.iter().zip(back.iter()) {
        assert_eq!(da, db);
        assert_eq!(ta.to_le_bytes(), tb.to_le_bytes());
        assert_eq!(ta.shape(), tb.shape());
    }
    assert_eq!(&bytes[..4], b"LPCW");
    // Every truncation fails; extra bytes fail.
    for n in 0..bytes.len() {
        assert!(
            Weights::from_bytes(&bytes[..n]).is_err(),
            "truncated at {n}"
        );
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(Weights::from_bytes(&extra)
        .unwrap_err()
        .to_string()
        .contains("1 unexpected bytes"));
    // Every single-byte corruption is either detected or (bool bytes: any non-zero is true)
    // yields the same contents.
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            let r = std::panic::catch_unwind(|| Weights::from_bytes(&b));
            match r {
                Err(_) => panic!("from_bytes panicked at byte {i}"),
                Ok(Err(_)) => {}
                Ok(Ok(got)) => {
                    for ((da, ta), (db, tb)) in w2.iter().zip(got.iter()) {
                        assert_eq!(da, db, "byte {i}");
                        assert!(
                            ta.same_content(tb),
                            "byte {i} ^ {flip:#x} changed content undetected"
                        );
                    }
                }
            }
        }
    }
    // Hostile headers: huge count, huge rank, huge dims, bad version, bad dtype.
    let mut h = b"LPCW".to_vec();
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(Weights::from_bytes(&h)
        .unwrap_err()
        .to_string()
        .contains("truncated"));
    let mut t = h[..8].to_vec();
    t.extend_from_slice(&1u64.to_le_bytes());
    t.extend_from_slice(&[0; 32]);
    let mut rank = t.clone();
    rank.push(1);
    rank.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Weights::from_bytes(&rank)
        .unwrap_err()
        .to_string()
        .contains("dims"));
    let mut dims = t.clone();
    dims.push(1);
    dims.extend_from_slice(&2u32.to_le_bytes());
    dims.extend_from_slice(&u64::MAX.to_le_bytes());
    dims.extend_from_slice(&u64::MAX.to_le_bytes());
    dims.extend_from_slice(&8u64.to_le_bytes());
    assert!(Weights::from_bytes(&dims)
        .unwrap_err()
        .to_string()
        .contains("more than 2^64"));
    let mut dt = t.clone();
    dt.push(99);
    assert!(Weights::from_bytes(&dt)
        .unwrap_err()
        .to_string()
        .contains("unknown dtype code 99"));
    let mut v = bytes.clone();
    v[4] = 2;
    assert!(Weights::from_bytes(&v)
        .unwrap_err()
        .to_string()
        .contains("version 2"));
    assert!(Weights::from_bytes(b"LPC")
        .unwrap_err()
        .to_string()
        .contains("bad magic"));
    assert!(Weights::from_bytes(b"").is_err());
    // Empty weights are a valid file.
    assert!(Weights::from_bytes(&Weights::new().to_bytes())
        .unwrap()
        .is_empty());
}

#[test]
fn recurrent_activation_lists_are_checked() {
    let text = |acts: &str| {
        format!(
            "graph @g(%x: ?[*]) -> (%y) {{\n  %y = rnn(%x, %x, %x) {{hidden_size=2, activations={acts}}}\n  return %y\n}}"
        )
    };
    let g = parse(&text("[scaled_tanh(1.5, -0.5)]")).expect("parses");
    let op = &g.node(g.outputs()[0].node).op;
    let Op::Rnn(a) = op else { panic!("{op:?}") };
    assert_eq!(
        a.activations,
        [RnnActivation::ScaledTanh {
            alpha: 1.5,
            beta: -0.5
        }]
    );
    for (acts, want) in [
        ("[swish]", "`swish` is not a recurrent activation"),
        ("[elu(1.0, 2.0)]", "`elu` takes 1 parameter(s), got 2"),
        (
            "[leaky_relu]",
            "after `leaky_relu` (it takes 1 parameter(s))",
        ),
        ("[tanh(1.0)]", "expected `,` or `]`"),
        ("[1]", "expected an activation"),
    ] {
        let (_, _, msg) = err(&text(acts));
        assert!(msg.contains(want), "{acts}: {msg}");
    }
}
