//! Image calibration data: PNG and JPEG files and folders (`../shared/data/images`), their
//! channel order and preprocessing, and the errors for formats lpc does not decode.

use lpc_data::{LoadOptions, SampleSource, Samples};
use std::path::{Path, PathBuf};

fn images() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/images");
    assert!(
        p.exists(),
        "{} is missing: the tests need ../shared",
        p.display()
    );
    p
}

/// A model whose input is one 3×64×64 image.
fn model() -> lpc_ir::Graph {
    let mut g = lpc_ir::text::parse(
        "graph @m(%x: f32[1,3,64,64]) -> (%y) {\n  %y = relu(%x) : f32[1,3,64,64]\n  return %y\n}\n",
    )
    .unwrap();
    lpc_ir::infer_types(&mut g).unwrap();
    g
}

fn all() -> LoadOptions {
    LoadOptions {
        subset: None,
        ..Default::default()
    }
}

/// Per-channel means of sample `i`, in pixel levels (0..255).
fn channel_means(s: &Samples, i: usize) -> Vec<f64> {
    let t = &s.get(i).unwrap()[0];
    assert_eq!(t.shape(), &[1, 3, 64, 64]);
    let v = t.to_f32_vec();
    v.chunks(64 * 64)
        .map(|c| c.iter().map(|&x| x as f64).sum::<f64>() / c.len() as f64 * 255.0)
        .collect()
}

#[test]
fn jpeg_decodes_in_rgb_order() {
    let g = model();
    let stretch = |bgr| LoadOptions {
        image: lpc_data::ImageOptions {
            crop: false,
            bgr,
            ..Default::default()
        },
        ..all()
    };
    // Per-channel means of the whole image decoded by Pillow 13: retina (159.4, 63.5, 46.1),
    // hubble (18.6, 19.8, 19.1). Stretching to 64×64 keeps the means to within a level.
    for (file, want) in [
        ("retina.jpg", [159.43, 63.55, 46.12]),
        ("hubble_deep_field.jpg", [18.58, 19.79, 19.09]),
    ] {
        let s = Samples::open(&images().join(file), &g, &stretch(false)).unwrap();
        assert_eq!(s.len(), 1);
        let m = channel_means(&s, 0);
        for c in 0..3 {
            assert!(
                (m[c] - want[c]).abs() < 1.0,
                "{file}: channel means {m:?}, want {want:?}"
            );
        }
        let b = channel_means(
            &Samples::open(&images().join(file), &g, &stretch(true)).unwrap(),
            0,
        );
        assert_eq!(b, [m[2], m[1], m[0]], "{file}: --bgr reverses the channels");
    }
}

#[test]
fn folder_mixes_png_and_jpeg() {
    let s = Samples::open(&images(), &model(), &all()).unwrap();
    // 6 PNG + 2 JPEG; the README.md beside them is not data.
    assert_eq!(s.len(), 8);
    for i in 0..s.len() {
        let m = channel_means(&s, i);
        assert!(m.iter().all(|&v| v > 1.0 && v < 254.0), "sample {i}: {m:?}");
    }
}

fn data_err(path: &Path) -> String {
    match Samples::open(path, &model(), &all()) {
        Err(e) => e.to_string(),
        Ok(s) => match s.get(0) {
            Err(e) => e.to_string(),
            other => panic!("expected a data error, got {:?}", other.map(|_| ())),
        },
    }
}

#[test]
fn unreadable_images_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("lpc-images-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A truncated JPEG: the error names the file.
    let bytes = std::fs::read(images().join("retina.jpg")).unwrap();
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let e = data_err(&cut);
    assert!(e.contains("cut.jpg") && e.contains("JPEG"), "{e}");
    // Not a JPEG at all.
    let junk = dir.join("junk.jpeg");
    std::fs::write(&junk, b"not an image").unwrap();
    assert!(data_err(&junk).contains("junk.jpeg"));
    // A folder holding a format lpc does not decode is an error naming it, not a skip.
    let folder = dir.join("mixed");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(images().join("retina.jpg"), folder.join("a.jpg")).unwrap();
    std::fs::write(folder.join("b.bmp"), b"BM").unwrap();
    let e = data_err(&folder);
    assert!(e.contains("b.bmp") && e.contains("not supported"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
