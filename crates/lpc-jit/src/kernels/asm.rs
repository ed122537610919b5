//! Pieces shared by the hand-assembled (iced-x86) kernels: the register tables and the
//! 16-element loop with an opmask tail of the zmm vector kernels.

use iced_x86::code_asm::*;

/// zmm0..zmm31 by number.
pub(crate) const ZMM: [AsmRegisterZmm; 32] = [
    zmm0, zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12, zmm13, zmm14,
    zmm15, zmm16, zmm17, zmm18, zmm19, zmm20, zmm21, zmm22, zmm23, zmm24, zmm25, zmm26, zmm27,
    zmm28, zmm29, zmm30, zmm31,
];

/// xmm0..xmm31 by number (the low 128 bits of the zmm of the same number).
pub(crate) const XMM: [AsmRegisterXmm; 32] = [
    xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14,
    xmm15, xmm16, xmm17, xmm18, xmm19, xmm20, xmm21, xmm22, xmm23, xmm24, xmm25, xmm26, xmm27,
    xmm28, xmm29, xmm30, xmm31,
];

/// Emits the loop over elements `i .. end` (registers; `i` advances): `body(a, false)` for
/// every whole 16, then, when 1–15 are left, `k1` = the low `end − i` bits and `body(a, true)`.
/// Clobbers `rax` and `edx` between bodies. Falls through when done.
pub(crate) fn chunks_of_16<E: From<IcedError>>(
    a: &mut CodeAssembler,
    i: AsmRegister64,
    end: AsmRegister64,
    mut body: impl FnMut(&mut CodeAssembler, bool) -> Result<(), E>,
) -> Result<(), E> {
    let mut whole = a.create_label();
    let mut tail = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut whole)?;
    a.lea(rax, qword_ptr(i + 16))?;
    a.cmp(rax, end)?;
    a.jg(tail)?;
    body(a, false)?;
    a.add(i, 16)?;
    a.jmp(whole)?;
    a.set_label(&mut tail)?;
    a.mov(rax, end)?;
    a.sub(rax, i)?;
    a.jle(done)?;
    a.mov(edx, -1i32)?;
    a.bzhi(edx, edx, eax)?;
    a.kmovw(k1, edx)?;
    body(a, true)?;
    a.set_label(&mut done)?;
    // `done` marks a nop of its own, so a label the caller sets next cannot collide with it.
    a.nop()?;
    Ok(())
}
