//! Cranelift emission of the GEMM function: loops over row blocks and column panels around a
//! register-blocked microkernel, with the fused epilogue.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::Offset32;
use cranelift_codegen::ir::types::{F32, F32X4, F64, F64X2, I16X8, I32, I32X4, I64, I8, I8X16};
use cranelift_codegen::ir::{
    ConstantData, Endianness, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::{Epilogue, NR};

/// How a k-group (4 k values) of one row is multiplied into 8 columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DotKind {
    /// The tree Cranelift folds into `vpdpbusd`.
    Vnni,
    /// Exact i16 path: `pmovzxbw`/`pmovsxbw`, `pmaddwd`, `phaddd`.
    ExactI16,
}

/// Compile-time shape of one GEMM function.
pub(super) struct Shape {
    /// Rows per full block.
    pub mr: usize,
    /// Rows of the tail block (M % mr), 0 when none.
    pub tail: usize,
    /// K.
    pub k: usize,
    /// Packed A row stride in bytes (K rounded up to 16).
    pub ka: usize,
    pub epilogue: Epilogue,
    pub dot: DotKind,
}

impl Shape {
    fn k_groups(&self) -> usize {
        self.k.div_ceil(4)
    }
    fn panel_len(&self) -> i64 {
        (self.k_groups() * 4 * NR) as i64
    }
    fn out_size(&self) -> i64 {
        match self.epilogue {
            Epilogue::Quant { .. } => 1,
            Epilogue::F32 | Epilogue::I32 => 4,
        }
    }
}

fn ro() -> MemFlagsData {
    MemFlagsData::new().with_notrap().with_readonly()
}
fn rw() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}
fn le() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// Values live for the whole function (the arguments).
struct Args {
    b: Value,
    ldc: Value,
    nfull: Value,
    npanels: Value,
}

/// Emits the whole function body. Parameters (all i64): `a, b, bias, scale, out, ldc_bytes,
/// nfull, rem, nblocks, tail`. See `GemmKernel::call` for their meaning.
pub(super) fn emit(fb: &mut FunctionBuilder, params: &[Value], s: &Shape) {
    let (a, b, bias, scale, out) = (params[0], params[1], params[2], params[3], params[4]);
    let (ldc, nfull, rem, nblocks, tail) = (params[5], params[6], params[7], params[8], params[9]);
    let has_rem = fb.ins().icmp_imm_s(IntCC::NotEqual, rem, 0);
    let has_rem = fb.ins().uextend(I64, has_rem);
    let npanels = fb.ins().iadd(nfull, has_rem);
    let args = Args {
        b,
        ldc,
        nfull,
        npanels,
    };
    // Pointers advanced block by block.
    let va = fb.declare_var(I64);
    let vbias = fb.declare_var(I64);
    let vscale = fb.declare_var(I64);
    let vout = fb.declare_var(I64);
    let vleft = fb.declare_var(I64);
    fb.def_var(va, a);
    fb.def_var(vbias, bias);
    fb.def_var(vscale, scale);
    fb.def_var(vout, out);
    fb.def_var(vleft, nblocks);
    let exit = fb.create_block();
    let full_loop = fb.create_block();
    let after_full = fb.create_block();
    // Nothing to do without panels.
    let no_panels = fb.ins().icmp_imm_s(IntCC::Equal, npanels, 0);
    let start = fb.create_block();
    fb.ins().brif(no_panels, exit, &[], start, &[]);
    fb.switch_to_block(start);
    let none = fb.ins().icmp_imm_s(IntCC::Equal, nblocks, 0);
    fb.ins().brif(none, after_full, &[], full_loop, &[]);

    fb.switch_to_block(full_loop);
    let ptrs = [
        fb.use_var(va),
        fb.use_var(vbias),
        fb.use_var(vscale),
        fb.use_var(vout),
    ];
    emit_row_block(fb, &args, s, s.mr, ptrs, rem);
    let r = s.mr as i64;
    let na = fb.ins().iadd_imm_s(ptrs[0], r * s.ka as i64);
    let nb = fb.ins().iadd_imm_s(ptrs[1], r * 4);
    let ns = fb.ins().iadd_imm_s(ptrs[2], r * 4);
    let rows = fb.ins().imul_imm_s(ldc, r);
    let no = fb.ins().iadd(ptrs[3], rows);
    fb.def_var(va, na);
    fb.def_var(vbias, nb);
    fb.def_var(vscale, ns);
    fb.def_var(vout, no);
    let left = fb.use_var(vleft);
    let left = fb.ins().iadd_imm_s(left, -1);
    fb.def_var(vleft, left);
    fb.ins().brif(left, full_loop, &[], after_full, &[]);

    fb.switch_to_block(after_full);
    if s.tail > 0 {
        let tail_block = fb.create_block();
        fb.ins().brif(tail, tail_block, &[], exit, &[]);
        fb.switch_to_block(tail_block);
        let ptrs = [
            fb.use_var(va),
            fb.use_var(vbias),
            fb.use_var(vscale),
            fb.use_var(vout),
        ];
        emit_row_block(fb, &args, s, s.tail, ptrs, rem);
    }
    fb.ins().jump(exit, &[]);
    fb.switch_to_block(exit);
    fb.ins().return_(&[]);
}

/// One block of `rows` rows over every panel. `ptrs` = A rows, bias, scale, output row 0.
/// Leaves the builder in a fresh block after the panel loop.
fn emit_row_block(
    fb: &mut FunctionBuilder,
    args: &Args,
    s: &Shape,
    rows: usize,
    ptrs: [Value; 4],
    rem: Value,
) {
    let [a, bias, scale, out] = ptrs;
    let vp = fb.declare_var(I64);
    let vbp = fb.declare_var(I64);
    let vop = fb.declare_var(I64);
    let zero = fb.ins().iconst(I64, 0);
    fb.def_var(vp, zero);
    fb.def_var(vbp, args.b);
    fb.def_var(vop, out);
    let panel = fb.create_block();
    let done = fb.create_block();
    fb.ins().jump(panel, &[]);
    fb.switch_to_block(panel);
    let p = fb.use_var(vp);
    let bp = fb.use_var(vbp);
    let op = fb.use_var(vop);

    // Accumulators start at the bias.
    let mut acc = Vec::with_capacity(rows * 2);
    for r in 0..rows {
        let bv = fb.ins().load(I32, ro(), bias, (4 * r) as i32);
        let bv = fb.ins().splat(I32X4, bv);
        acc.push(bv);
        acc.push(bv);
    }
    let acc = emit_k_loop(fb, s, rows, a, bp, acc);
    let results = emit_epilogue(fb, s, rows, scale, &acc);

    // Full panel: store straight; last, partial panel: through the stack.
    let full = fb.create_block();
    let partial = fb.create_block();
    let next = fb.create_block();
    let is_full = fb.ins().icmp(IntCC::UnsignedLessThan, p, args.nfull);
    fb.ins().brif(is_full, full, &[], partial, &[]);

    fb.switch_to_block(full);
    let mut row = op;
    for (r, res) in results.iter().enumerate() {
        if r > 0 {
            row = fb.ins().iadd(row, args.ldc);
        }
        store_result(fb, res, row, 0);
    }
    fb.ins().jump(next, &[]);

    fb.switch_to_block(partial);
    let row_bytes = NR as i64 * s.out_size();
    let slot = fb.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        (rows as i64 * row_bytes) as u32,
        4,
    ));
    let tmp = fb.ins().stack_addr(I64, slot, 0);
    for (r, res) in results.iter().enumerate() {
        store_result(fb, res, tmp, (r as i64 * row_bytes) as i32);
    }
    let nbytes = fb.ins().imul_imm_s(rem, s.out_size());
    let mut row = op;
    for r in 0..rows {
        if r > 0 {
            row = fb.ins().iadd(row, args.ldc);
        }
        let src = fb.ins().iadd_imm_s(tmp, r as i64 * row_bytes);
        emit_copy(fb, src, row, nbytes);
    }
    fb.ins().jump(next, &[]);

    fb.switch_to_block(next);
    let p1 = fb.ins().iadd_imm_s(p, 1);
    let bp1 = fb.ins().iadd_imm_s(bp, s.panel_len());
    let op1 = fb.ins().iadd_imm_s(op, row_bytes);
    fb.def_var(vp, p1);
    fb.def_var(vbp, bp1);
    fb.def_var(vop, op1);
    let more = fb.ins().icmp(IntCC::UnsignedLessThan, p1, args.npanels);
    fb.ins().brif(more, panel, &[], done, &[]);
    fb.switch_to_block(done);
}

/// Byte copy loop `dst[0..n] = src[0..n]`, `n >= 1`.
fn emit_copy(fb: &mut FunctionBuilder, src: Value, dst: Value, n: Value) {
    let vi = fb.declare_var(I64);
    let zero = fb.ins().iconst(I64, 0);
    fb.def_var(vi, zero);
    let body = fb.create_block();
    let done = fb.create_block();
    fb.ins().jump(body, &[]);
    fb.switch_to_block(body);
    let i = fb.use_var(vi);
    let s = fb.ins().iadd(src, i);
    let d = fb.ins().iadd(dst, i);
    let v = fb.ins().load(I8, rw(), s, 0);
    fb.ins().store(rw(), v, d, 0);
    let i1 = fb.ins().iadd_imm_s(i, 1);
    fb.def_var(vi, i1);
    let more = fb.ins().icmp(IntCC::UnsignedLessThan, i1, n);
    fb.ins().brif(more, body, &[], done, &[]);
    fb.switch_to_block(done);
}

/// The K loop: full chunks of 4 k-groups (16 k) in a counted loop, then the 0–3 tail groups.
fn emit_k_loop(
    fb: &mut FunctionBuilder,
    s: &Shape,
    rows: usize,
    a: Value,
    bp: Value,
    mut acc: Vec<Value>,
) -> Vec<Value> {
    let groups = s.k_groups();
    let chunks = groups / 4;
    let tail_groups = groups % 4;
    let (mut ap, mut bpp) = (a, bp);
    if chunks > 0 {
        let vacc: Vec<Variable> = acc.iter().map(|_| fb.declare_var(I32X4)).collect();
        for (v, &x) in vacc.iter().zip(&acc) {
            fb.def_var(*v, x);
        }
        let vap = fb.declare_var(I64);
        let vbp = fb.declare_var(I64);
        let vcnt = fb.declare_var(I64);
        fb.def_var(vap, a);
        fb.def_var(vbp, bp);
        let cnt = fb.ins().iconst(I64, chunks as i64);
        fb.def_var(vcnt, cnt);
        let body = fb.create_block();
        let done = fb.create_block();
        fb.ins().jump(body, &[]);
        fb.switch_to_block(body);
        let lap = fb.use_var(vap);
        let lbp = fb.use_var(vbp);
        let mut lacc: Vec<Value> = vacc.iter().map(|v| fb.use_var(*v)).collect();
        for g in 0..4 {
            let at = GroupAt {
                ap: lap,
                lane: g,
                bp: lbp,
                boff: (g * 4 * NR) as i32,
            };
            emit_group(fb, s, rows, at, &mut lacc);
        }
        for (v, &x) in vacc.iter().zip(&lacc) {
            fb.def_var(*v, x);
        }
        let nap = fb.ins().iadd_imm_s(lap, 16);
        let nbp = fb.ins().iadd_imm_s(lbp, (16 * NR) as i64);
        fb.def_var(vap, nap);
        fb.def_var(vbp, nbp);
        let c = fb.use_var(vcnt);
        let c = fb.ins().iadd_imm_s(c, -1);
        fb.def_var(vcnt, c);
        fb.ins().brif(c, body, &[], done, &[]);
        fb.switch_to_block(done);
        ap = fb.use_var(vap);
        bpp = fb.use_var(vbp);
        acc = vacc.iter().map(|v| fb.use_var(*v)).collect();
    }
    for g in 0..tail_groups {
        let at = GroupAt {
            ap,
            lane: g,
            bp: bpp,
            boff: (g * 4 * NR) as i32,
        };
        emit_group(fb, s, rows, at, &mut acc);
    }
    acc
}

fn shuffle_dword(fb: &mut FunctionBuilder, v: Value, lane: usize) -> Value {
    let mut mask = [0u8; 16];
    for (i, m) in mask.iter_mut().enumerate() {
        *m = (4 * lane + i % 4) as u8;
    }
    let imm = fb
        .func
        .dfg
        .immediates
        .push(ConstantData::from(mask.as_ref()));
    fb.ins().shuffle(v, v, imm)
}

/// Where one k-group's operands are: `ap` points at the 16-byte chunk of A's row 0 holding the
/// group at dword `lane`; `bp` at the B panel, `boff` the byte offset of the group in it.
#[derive(Clone, Copy)]
struct GroupAt {
    ap: Value,
    lane: usize,
    bp: Value,
    boff: i32,
}

/// One k-group (4 k values) at `at`: `acc[r][j] += A[r][4g..4g+4] · B panel vector j`.
fn emit_group(fb: &mut FunctionBuilder, s: &Shape, rows: usize, at: GroupAt, acc: &mut [Value]) {
    let GroupAt { ap, lane, bp, boff } = at;
    let bflags = ro().with_aligned();
    let b0 = fb.ins().load(I8X16, bflags, bp, boff);
    let b1 = fb.ins().load(I8X16, bflags, bp, boff + 16);
    match s.dot {
        DotKind::Vnni => {
            for r in 0..rows {
                let a16 = fb
                    .ins()
                    .load(I8X16, ro(), ap, Offset32::new((r * s.ka) as i32));
                let w = shuffle_dword(fb, a16, lane);
                for (j, &bv) in [b0, b1].iter().enumerate() {
                    let i = 2 * r + j;
                    acc[i] = vnni_dot(fb, acc[i], w, bv);
                }
            }
        }
        DotKind::ExactI16 => {
            let bw = [
                fb.ins().uwiden_low(b0),
                fb.ins().uwiden_high(b0),
                fb.ins().uwiden_low(b1),
                fb.ins().uwiden_high(b1),
            ];
            for r in 0..rows {
                let a16 = fb
                    .ins()
                    .load(I8X16, ro(), ap, Offset32::new((r * s.ka) as i32));
                let w = shuffle_dword(fb, a16, lane);
                let ww = fb.ins().swiden_low(w);
                for j in 0..2 {
                    let lo = pmaddwd(fb, bw[2 * j], ww);
                    let hi = pmaddwd(fb, bw[2 * j + 1], ww);
                    let d = fb.ins().iadd_pairwise(lo, hi);
                    let i = 2 * r + j;
                    acc[i] = fb.ins().iadd(d, acc[i]);
                }
            }
        }
    }
}

/// `acc + Σ_4 swiden(w)·uwiden(b)` per i32 lane, in the exact shape Cranelift folds into
/// `vpdpbusd acc, b, w` (see `notes/cranelift-int8.md`): dot first, accumulator second.
/// Shared with the depthwise kernel.
pub(crate) fn vnni_dot(fb: &mut FunctionBuilder, acc: Value, w: Value, b: Value) -> Value {
    let wl = fb.ins().swiden_low(w);
    let bl = fb.ins().uwiden_low(b);
    let lo = fb.ins().imul(wl, bl);
    let wh = fb.ins().swiden_high(w);
    let bh = fb.ins().uwiden_high(b);
    let hi = fb.ins().imul(wh, bh);
    let lol = fb.ins().swiden_low(lo);
    let loh = fb.ins().swiden_high(lo);
    let l = fb.ins().iadd_pairwise(lol, loh);
    let hil = fb.ins().swiden_low(hi);
    let hih = fb.ins().swiden_high(hi);
    let h = fb.ins().iadd_pairwise(hil, hih);
    let d = fb.ins().iadd_pairwise(l, h);
    fb.ins().iadd(d, acc)
}

/// `pmaddwd x, y` on two i16x8 values, in the tree Cranelift matches.
fn pmaddwd(fb: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let xl = fb.ins().swiden_low(x);
    let yl = fb.ins().swiden_low(y);
    let pl = fb.ins().imul(xl, yl);
    let xh = fb.ins().swiden_high(x);
    let yh = fb.ins().swiden_high(y);
    let ph = fb.ins().imul(xh, yh);
    fb.ins().iadd_pairwise(pl, ph)
}

/// One row's 8 results, ready to store.
enum RowResult {
    /// 8 bytes (u8 or i8), in the low half of an f64x2 lane 0 (stored with `movsd`).
    Bytes(Value),
    /// Two 16-byte vectors (i32x4 or f32x4).
    Vecs(Value, Value),
}

fn store_result(fb: &mut FunctionBuilder, res: &RowResult, ptr: Value, off: i32) {
    match *res {
        RowResult::Bytes(v) => {
            fb.ins().store(rw(), v, ptr, off);
        }
        RowResult::Vecs(v0, v1) => {
            fb.ins().store(rw(), v0, ptr, off);
            fb.ins().store(rw(), v1, ptr, off + 16);
        }
    }
}

fn f32x4_const(fb: &mut FunctionBuilder, x: f32) -> Value {
    let mut bytes = Vec::with_capacity(16);
    for _ in 0..4 {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    let c = fb.func.dfg.constants.insert(ConstantData::from(bytes));
    fb.ins().vconst(F32X4, c)
}

fn i32x4_const(fb: &mut FunctionBuilder, x: i32) -> Value {
    let mut bytes = Vec::with_capacity(16);
    for _ in 0..4 {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    let c = fb.func.dfg.constants.insert(ConstantData::from(bytes));
    fb.ins().vconst(I32X4, c)
}

/// The epilogue of every row: requantize / scale / raw.
fn emit_epilogue(
    fb: &mut FunctionBuilder,
    s: &Shape,
    rows: usize,
    scale: Value,
    acc: &[Value],
) -> Vec<RowResult> {
    let mut out = Vec::with_capacity(rows);
    match s.epilogue {
        Epilogue::I32 => {
            for r in 0..rows {
                out.push(RowResult::Vecs(acc[2 * r], acc[2 * r + 1]));
            }
        }
        Epilogue::F32 => {
            for r in 0..rows {
                let sc = fb.ins().load(F32, ro(), scale, (4 * r) as i32);
                let sc = fb.ins().splat(F32X4, sc);
                let mut v = [acc[2 * r], acc[2 * r + 1]];
                for x in v.iter_mut() {
                    let f = fb.ins().fcvt_from_sint(F32X4, *x);
                    *x = fb.ins().fmul(f, sc);
                }
                out.push(RowResult::Vecs(v[0], v[1]));
            }
        }
        Epilogue::Quant { zp, lo, hi, signed } => {
            // Clamp in f32 to [lo - zp, hi - zp] (exact integers: checked by the spec) before
            // the truncating conversion, then add zp: equal to clamping after adding zp.
            let flo = (lo as i64 - zp as i64) as f32;
            let fhi = (hi as i64 - zp as i64) as f32;
            for r in 0..rows {
                let sc = fb.ins().load(F32, ro(), scale, (4 * r) as i32);
                let sc = fb.ins().splat(F32X4, sc);
                let vlo = f32x4_const(fb, flo);
                let vhi = f32x4_const(fb, fhi);
                let vzp = i32x4_const(fb, zp);
                let mut q = [acc[2 * r], acc[2 * r + 1]];
                for x in q.iter_mut() {
                    let f = fb.ins().fcvt_from_sint(F32X4, *x);
                    let f = fb.ins().fmul(f, sc);
                    let f = fb.ins().nearest(f);
                    // max(f, lo): `bitselect (fcmp lt lo f) f lo` -> maxps f, lo
                    let c = fb.ins().fcmp(FloatCC::LessThan, vlo, f);
                    let c = fb.ins().bitcast(F32X4, le(), c);
                    let f = fb.ins().bitselect(c, f, vlo);
                    // min(f, hi): `bitselect (fcmp lt f hi) f hi` -> minps f, hi
                    let c = fb.ins().fcmp(FloatCC::LessThan, f, vhi);
                    let c = fb.ins().bitcast(F32X4, le(), c);
                    let f = fb.ins().bitselect(c, f, vhi);
                    let i = fb.ins().x86_cvtt2dq(I32X4, f);
                    *x = fb.ins().iadd(i, vzp);
                }
                let h = fb.ins().snarrow(q[0], q[1]);
                debug_assert_eq!(fb.func.dfg.value_type(h), I16X8);
                let bytes = if signed {
                    fb.ins().snarrow(h, h)
                } else {
                    fb.ins().unarrow(h, h)
                };
                let d = fb.ins().bitcast(F64X2, le(), bytes);
                let d = fb.ins().extractlane(d, 0);
                debug_assert_eq!(fb.func.dfg.value_type(d), F64);
                out.push(RowResult::Bytes(d));
            }
        }
    }
    out
}
