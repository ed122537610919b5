//! WAV audio (`hound`): one file is one sample, `[channels, frames]` f32 — integer PCM scaled
//! to `[-1, 1)` by `2^(bits-1)`, float PCM as stored (the layout torchaudio and soundfile give).

use crate::error::DataError;
use lpc_ir::Tensor;
use std::path::Path;

/// Reads a `.wav` file as `[channels, frames]` f32 samples.
pub fn read_wav(path: &Path) -> Result<Tensor, DataError> {
    let what = path.display().to_string();
    let bad = |msg: String| DataError::File {
        what: what.clone(),
        msg,
    };
    let file = std::fs::File::open(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let mut r = hound::WavReader::new(std::io::BufReader::new(file)).map_err(|e| {
        bad(format!(
            "not a readable WAV file (truncated or malformed header): {e}"
        ))
    })?;
    let spec = r.spec();
    let channels = usize::from(spec.channels);
    let samples: Result<Vec<f32>, hound::Error> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().collect(),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect()
        }
    };
    let interleaved = samples.map_err(|e| bad(format!("reading the samples: {e}")))?;
    if channels == 0 || interleaved.is_empty() {
        return Err(bad("holds no samples".into()));
    }
    if let Some(i) = interleaved.iter().position(|v| !v.is_finite()) {
        return Err(DataError::NonFinite {
            what,
            index: i,
            value: f64::from(interleaved[i]),
        });
    }
    let frames = interleaved.len() / channels;
    let mut planar = vec![0f32; channels * frames];
    for (f, frame) in interleaved.chunks_exact(channels).enumerate() {
        for (c, &v) in frame.iter().enumerate() {
            planar[c * frames + f] = v;
        }
    }
    Tensor::from_f32(&[channels, frames], planar).map_err(DataError::Shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, spec: hound::WavSpec, samples: &[i32]) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn pcm16_stereo_is_planar_and_scaled() {
        let dir = std::env::temp_dir().join(format!("lpc-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        // frames (L, R): (0, 16384), (-32768, 32767)
        write(&p, spec, &[0, 16384, -32768, 32767]);
        let t = read_wav(&p).unwrap();
        assert_eq!(t.shape(), &[2, 2]);
        assert_eq!(t.as_f32().unwrap(), &[0.0, -1.0, 0.5, 32767.0 / 32768.0]);
        // Truncated: the header promises more data than the file holds.
        let bytes = std::fs::read(&p).unwrap();
        let cut = dir.join("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
        let e = read_wav(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.wav"), "{e}");
        std::fs::write(&cut, b"RIFF....WAVEjunk").unwrap();
        let e = read_wav(&cut).unwrap_err().to_string();
        assert!(e.contains("cut.wav") && e.contains("WAV"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn clips_are_samples_of_an_audio_input() {
        use crate::{LoadOptions, SampleSource, Samples};
        let dir = std::env::temp_dir().join(format!("lpc-wavs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        for k in 0..3 {
            let s: Vec<i32> = (0..8).map(|i| (i + k) * 2048).collect();
            write(&dir.join(format!("{k}.wav")), spec, &s);
        }
        let g = lpc_ir::text::parse(
            "graph @a(%x: f32[N,8]) -> (%y) {\n  %y = relu(%x) : f32[N,8]\n  return %y\n}",
        )
        .unwrap();
        let set = Samples::open(&dir, &g, &LoadOptions::default()).unwrap();
        assert_eq!(set.len(), 3);
        let first = set.get(0).unwrap();
        assert_eq!(first[0].shape(), &[1, 8]);
        assert_eq!(first[0].as_f32().unwrap()[1], 0.0625);
        let one = Samples::open_per_input(
            &[("x".into(), dir.join("2.wav"))],
            &g,
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one.get(0).unwrap()[0].as_f32().unwrap()[0], 0.125);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
