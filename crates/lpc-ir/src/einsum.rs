//! Einsum equations (ONNX `Einsum`): parsed once against the input ranks, shared by shape
//! inference and the reference interpreter.

/// An equation resolved against input ranks: every axis of every input and of the output
/// named by a label id. The ellipsis stands for the first `ellipsis` labels (ids
/// `0..ellipsis`, right-aligned: an input with fewer ellipsis axes uses the last ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EinsumSpec {
    /// The label of each axis of each input.
    pub inputs: Vec<Vec<usize>>,
    /// The label of each output axis (each label once).
    pub output: Vec<usize>,
    /// Number of labels.
    pub labels: usize,
    /// Number of labels the ellipsis stands for.
    pub ellipsis: usize,
}

/// One term's items: a letter or the ellipsis.
#[derive(Clone, Copy, PartialEq)]
enum Item {
    Letter(char),
    Ellipsis,
}

fn term(s: &str) -> Result<Vec<Item>, String> {
    let mut out = vec![];
    let mut cs = s.chars().peekable();
    while let Some(c) = cs.next() {
        match c {
            '.' => {
                if cs.next() != Some('.') || cs.next() != Some('.') {
                    return Err(format!("term '{s}': '.' outside an ellipsis '...'"));
                }
                if out.contains(&Item::Ellipsis) {
                    return Err(format!("term '{s}' has two ellipses"));
                }
                out.push(Item::Ellipsis);
            }
            c if c.is_ascii_alphabetic() => out.push(Item::Letter(c)),
            c => return Err(format!("term '{s}': '{c}' is not a letter")),
        }
    }
    Ok(out)
}

/// Resolves `equation` (spaces allowed) for inputs of the given ranks. Without `->` the output
/// is the ellipsis then the letters used exactly once, in ASCII order (uppercase first, as
/// NumPy and the ONNX reference do). An explicit output must have the ellipsis when the inputs
/// have ellipsis axes.
pub fn einsum_spec(equation: &str, ranks: &[usize]) -> Result<EinsumSpec, String> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<Vec<Item>> = lhs.split(',').map(term).collect::<Result<_, _>>()?;
    if terms.len() != ranks.len() {
        return Err(format!(
            "equation '{equation}' has {} input term(s) but the op has {} input(s)",
            terms.len(),
            ranks.len()
        ));
    }
    let mut ellipsis = 0;
    for (t, &r) in terms.iter().zip(ranks) {
        let letters = t.iter().filter(|i| **i != Item::Ellipsis).count();
        let has_ell = t.contains(&Item::Ellipsis);
        if letters > r || (!has_ell && letters != r) {
            return Err(format!(
                "equation '{equation}': term with {letters} letter(s) for an input of rank {r}"
            ));
        }
        if has_ell {
            ellipsis = ellipsis.max(r - letters);
        }
    }
    let mut letters: Vec<char> = vec![];
    let id = |letters: &mut Vec<char>, c: char| match letters.iter().position(|&l| l == c) {
        Some(p) => ellipsis + p,
        None => {
            letters.push(c);
            ellipsis + letters.len() - 1
        }
    };
    let mut inputs = vec![];
    for (t, &r) in terms.iter().zip(ranks) {
        let n_ell = r - t.iter().filter(|i| **i != Item::Ellipsis).count();
        let mut axes = vec![];
        for item in t {
            match item {
                Item::Letter(c) => axes.push(id(&mut letters, *c)),
                Item::Ellipsis => axes.extend(ellipsis - n_ell..ellipsis),
            }
        }
        inputs.push(axes);
    }
    let output = match rhs {
        Some(r) => {
            let items = term(r)?;
            if ellipsis > 0 && !items.contains(&Item::Ellipsis) {
                return Err(format!(
                    "equation '{equation}': the inputs have ellipsis axes but the output has no '...'"
                ));
            }
            let mut out = vec![];
            for item in items {
                match item {
                    Item::Ellipsis => out.extend(0..ellipsis),
                    Item::Letter(c) => {
                        let Some(p) = letters.iter().position(|&l| l == c) else {
                            return Err(format!(
                                "equation '{equation}': output label '{c}' is in no input"
                            ));
                        };
                        if out.contains(&(ellipsis + p)) {
                            return Err(format!(
                                "equation '{equation}': output label '{c}' is repeated"
                            ));
                        }
                        out.push(ellipsis + p);
                    }
                }
            }
            out
        }
        None => {
            let mut once: Vec<char> = letters
                .iter()
                .copied()
                .filter(|&c| {
                    terms
                        .iter()
                        .flatten()
                        .filter(|&&i| i == Item::Letter(c))
                        .count()
                        == 1
                })
                .collect();
            once.sort_unstable();
            let mut out: Vec<usize> = (0..ellipsis).collect();
            out.extend(
                once.iter()
                    .map(|c| ellipsis + letters.iter().position(|l| l == c).expect("seen")),
            );
            out
        }
    };
    Ok(EinsumSpec {
        inputs,
        output,
        labels: ellipsis + letters.len(),
        ellipsis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_implicit_and_ellipsis() {
        let s = einsum_spec("ij,jk->ik", &[2, 2]).unwrap();
        assert_eq!(s.inputs, vec![vec![0, 1], vec![1, 2]]);
        assert_eq!(s.output, vec![0, 2]);
        // Implicit: letters used once, sorted (uppercase first).
        let s = einsum_spec("ba,aC", &[2, 2]).unwrap();
        assert_eq!(s.output, vec![2, 0]);
        // Ellipsis right-aligned; the implicit output starts with it.
        let s = einsum_spec("...ii ,...i", &[4, 2]).unwrap();
        assert_eq!(s.ellipsis, 2);
        assert_eq!(s.inputs, vec![vec![0, 1, 2, 2], vec![1, 2]]);
        assert_eq!(s.output, vec![0, 1]);
        assert!(einsum_spec("ij->k", &[2]).is_err());
        assert!(einsum_spec("ij", &[3]).is_err());
        assert!(einsum_spec("ij,j", &[2]).is_err());
        assert!(einsum_spec("...i->i", &[2]).is_err());
        assert!(einsum_spec("...i->i", &[1]).is_ok());
    }
}
