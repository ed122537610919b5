//! ImageDecoder: an encoded image file (a 1-D u8 tensor) to `[height, width, channels]` u8.
//! The format is told by the file's first bytes. PNG goes through the `png` crate, JPEG
//! through `jpeg-decoder` (as lpc-data reads them), BMP, PNM, TIFF and WebP through the
//! `image` crate, JPEG 2000 (JP2 files and raw codestreams) through `hayro-jpeg2000`. Every
//! image is decoded to 8-bit RGB first (alpha dropped, grayscale repeated), then laid out as
//! asked; a truncated or corrupt file is an error.

use crate::{invalid, EvalError, EvalResult};
use lpc_ir::{DType, PixelFormat, Tensor};

/// A decoded image: 8-bit RGB, row after row.
struct Rgb {
    height: usize,
    width: usize,
    px: Vec<u8>,
}

/// The file formats told apart by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Png,
    Jpeg,
    Jpeg2000,
    Bmp,
    Pnm,
    Tiff,
    WebP,
}

fn format_of(b: &[u8]) -> Option<Format> {
    let starts = |p: &[u8]| b.starts_with(p);
    Some(if starts(b"\x89PNG\r\n\x1a\n") {
        Format::Png
    } else if starts(b"\xff\xd8\xff") {
        Format::Jpeg
    } else if starts(b"\x00\x00\x00\x0cjP  \r\n\x87\n") || starts(b"\xff\x4f\xff\x51") {
        Format::Jpeg2000
    } else if starts(b"BM") {
        Format::Bmp
    } else if b.len() >= 2 && b[0] == b'P' && (b'1'..=b'7').contains(&b[1]) {
        Format::Pnm
    } else if starts(b"II*\x00") || starts(b"MM\x00*") {
        Format::Tiff
    } else if starts(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        Format::WebP
    } else {
        return None;
    })
}

/// The most memory a decoded image may take, 512 MiB (the `image` crate's default limit),
/// checked before decoding: a header may claim any size.
const MAX_BYTES: u64 = 1 << 29;

fn too_big(what: &str, bytes: u64) -> EvalError {
    invalid!("ImageDecoder: the {what} image would take {bytes} bytes, more than {MAX_BYTES}")
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> EvalError {
    invalid!("ImageDecoder: cannot decode the {what} image: {e}")
}

/// PNG: palette and low bit depths expanded, 16-bit samples cut to 8.
fn decode_png(b: &[u8]) -> EvalResult<Rgb> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(b));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| corrupt("PNG", e))?;
    // At most 4 channels of 8 bits after the transformations.
    let (w, h) = reader.info().size();
    let bytes = w as u64 * h as u64 * 4;
    if bytes > MAX_BYTES {
        return Err(too_big("PNG", bytes));
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| corrupt("PNG", e))?;
    buf.truncate(info.buffer_size());
    let (height, width) = (info.height as usize, info.width as usize);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(corrupt("PNG", "a palette image was not expanded"));
        }
    };
    // Rows may be padded (line_size); take each row's pixels.
    let line = info.line_size;
    let mut px = Vec::with_capacity(height * width * 3);
    for row in buf.chunks(line).take(height) {
        for p in row.chunks_exact(channels).take(width) {
            match channels {
                1 | 2 => px.extend([p[0]; 3]),
                _ => px.extend(&p[..3]),
            }
        }
    }
    if px.len() != height * width * 3 {
        return Err(corrupt("PNG", "the pixel data is short"));
    }
    Ok(Rgb { height, width, px })
}

/// JPEG: grayscale or YCbCr/RGB baseline and progressive files; CMYK and 16-bit are refused.
fn decode_jpeg(b: &[u8]) -> EvalResult<Rgb> {
    let mut dec = jpeg_decoder::Decoder::new(b);
    dec.set_max_decoding_buffer_size(MAX_BYTES as usize);
    let px = dec.decode().map_err(|e| corrupt("JPEG", e))?;
    let info = dec
        .info()
        .ok_or_else(|| corrupt("JPEG", "no frame header"))?;
    let (height, width) = (info.height as usize, info.width as usize);
    let px = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => px,
        jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&g| [g; 3]).collect(),
        f => {
            return Err(EvalError::Unsupported(format!(
                "ImageDecoder: JPEG pixel format {f:?}"
            )))
        }
    };
    if px.len() != height * width * 3 {
        return Err(corrupt("JPEG", "the pixel data is short"));
    }
    Ok(Rgb { height, width, px })
}

/// JPEG 2000 in strict mode (a truncated codestream is an error, not a partial image). The
/// size is checked before decoding: the decoder aborts the process when an allocation fails.
fn decode_jpeg2000(b: &[u8]) -> EvalResult<Rgb> {
    use hayro_jpeg2000::{ColorSpace, DecodeSettings, DecoderContext, Image};
    let settings = DecodeSettings {
        strict: true,
        ..DecodeSettings::default()
    };
    let img = Image::new(b, &settings).map_err(|e| corrupt("JPEG 2000", format!("{e:?}")))?;
    let color = match img.color_space() {
        ColorSpace::Gray => 1,
        ColorSpace::RGB => 3,
        ColorSpace::Icc { num_channels, .. } if matches!(num_channels, 1 | 3) => *num_channels,
        c => {
            return Err(EvalError::Unsupported(format!(
                "ImageDecoder: JPEG 2000 color space {c:?}"
            )))
        }
    } as usize;
    let channels = color + usize::from(img.has_alpha());
    let (height, width) = (img.height() as usize, img.width() as usize);
    // The decoder keeps f32 samples.
    let bytes = (height as u64) * (width as u64) * channels as u64 * 4;
    if bytes > MAX_BYTES {
        return Err(too_big("JPEG 2000", bytes));
    }
    let mut ctx = DecoderContext::default();
    let decoded = img
        .decode(&mut ctx)
        .map_err(|e| corrupt("JPEG 2000", format!("{e:?}")))?;
    let comps = decoded.components();
    if comps.len() != channels {
        return Err(corrupt(
            "JPEG 2000",
            format!("{} components for {channels} channels", comps.len()),
        ));
    }
    // Each component's samples scaled from its bit depth to 8 bits, rounded half up.
    let mut planes = vec![];
    for c in &comps[..color] {
        let (bits, v) = (c.bit_depth(), c.samples());
        if !(1..=16).contains(&bits) || v.len() != height * width {
            return Err(corrupt(
                "JPEG 2000",
                format!("a component of {} samples at {bits} bits", v.len()),
            ));
        }
        let scale = 255.0 / ((1u32 << bits) - 1) as f32;
        planes.push(
            v.iter()
                .map(|&x| (x * scale + 0.5) as u8)
                .collect::<Vec<u8>>(),
        );
    }
    let px = (0..height * width)
        .flat_map(|i| match planes.as_slice() {
            [g] => [g[i]; 3],
            p => [p[0][i], p[1][i], p[2][i]],
        })
        .collect();
    Ok(Rgb { height, width, px })
}

/// BMP, PNM, TIFF and WebP through the `image` crate (its default limit is `MAX_BYTES`).
fn decode_other(b: &[u8], f: Format) -> EvalResult<Rgb> {
    let (what, fmt) = match f {
        Format::Bmp => ("BMP", image::ImageFormat::Bmp),
        Format::Pnm => ("PNM", image::ImageFormat::Pnm),
        Format::Tiff => ("TIFF", image::ImageFormat::Tiff),
        Format::WebP => ("WebP", image::ImageFormat::WebP),
        _ => {
            return Err(invalid!(
                "ImageDecoder: {f:?} is not an `image` crate format"
            ))
        }
    };
    let img = image::load_from_memory_with_format(b, fmt).map_err(|e| corrupt(what, e))?;
    let rgb = img.to_rgb8();
    let (width, height) = rgb.dimensions();
    Ok(Rgb {
        height: height as usize,
        width: width as usize,
        px: rgb.into_raw(),
    })
}

/// ImageDecoder: see the module doc. Grayscale is ITU-R 601-2 luma in 16-bit fixed point
/// (`(19595 R + 38470 G + 7471 B + 2^15) >> 16`), the conversion of the ONNX reference
/// (Pillow's `convert("L")`).
pub fn image_decoder(pixel_format: PixelFormat, x: &Tensor) -> EvalResult<Tensor> {
    if x.dtype() != DType::U8 {
        return Err(EvalError::DType {
            slot: 0,
            what: "encoded_stream",
            got: x.dtype(),
            expected: "u8",
        });
    }
    if x.rank() != 1 {
        return Err(invalid!(
            "ImageDecoder: encoded_stream must have rank 1, got shape {:?}",
            x.shape()
        ));
    }
    let b = x.as_u8().map_err(|e| invalid!("{e}"))?;
    let img = match format_of(b) {
        Some(Format::Png) => decode_png(b)?,
        Some(Format::Jpeg) => decode_jpeg(b)?,
        Some(Format::Jpeg2000) => decode_jpeg2000(b)?,
        Some(f) => decode_other(b, f)?,
        None => {
            return Err(invalid!(
                "ImageDecoder: the {} bytes are not an image of a known format (PNG, JPEG, JPEG 2000, BMP, PNM, TIFF, WebP)",
                b.len()
            ))
        }
    };
    let Rgb { height, width, px } = img;
    let (c, data) = match pixel_format {
        PixelFormat::Rgb => (3, px),
        PixelFormat::Bgr => (
            3,
            px.chunks_exact(3)
                .flat_map(|p| [p[2], p[1], p[0]])
                .collect(),
        ),
        PixelFormat::Grayscale => (
            1,
            px.chunks_exact(3)
                .map(|p| {
                    let l = 19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32;
                    ((l + 0x8000) >> 16) as u8
                })
                .collect(),
        ),
    };
    Tensor::from_u8(&[height, width, c], data).map_err(|e| invalid!("ImageDecoder: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(b: &[u8]) -> Tensor {
        Tensor::from_u8(&[b.len()], b.to_vec()).unwrap()
    }

    /// A 2×1 binary PPM: red, then a blue-green.
    const PPM: &[u8] = b"P6\n2 1\n255\n\xff\x00\x00\x00\x80\xff";

    #[test]
    fn decodes_pnm_in_each_layout() {
        let rgb = image_decoder(PixelFormat::Rgb, &bytes(PPM)).unwrap();
        assert_eq!(rgb.shape(), &[1, 2, 3]);
        assert_eq!(rgb.as_u8().unwrap(), &[255, 0, 0, 0, 128, 255]);
        let bgr = image_decoder(PixelFormat::Bgr, &bytes(PPM)).unwrap();
        assert_eq!(bgr.as_u8().unwrap(), &[0, 0, 255, 255, 128, 0]);
        let g = image_decoder(PixelFormat::Grayscale, &bytes(PPM)).unwrap();
        assert_eq!(g.shape(), &[1, 2, 1]);
        // 0.299·255 = 76.2; 0.587·128 + 0.114·255 = 104.2.
        assert_eq!(g.as_u8().unwrap(), &[76, 104]);
    }

    /// The same image as a lossless JPEG 2000 codestream (written by OpenJPEG 2.5.4).
    const J2K: &[u8] = b"\xff\x4f\xff\x51\x00\x2f\x00\x00\x00\x00\x00\x02\x00\x00\x00\x01\
      \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x01\
      \x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x07\x01\x01\x07\x01\x01\
      \x07\x01\x01\xff\x52\x00\x0c\x00\x00\x00\x01\x00\x00\x04\x04\x00\
      \x01\xff\x5c\x00\x04\x40\x40\xff\x64\x00\x25\x00\x01\x43\x72\x65\
      \x61\x74\x65\x64\x20\x62\x79\x20\x4f\x70\x65\x6e\x4a\x50\x45\x47\
      \x20\x76\x65\x72\x73\x69\x6f\x6e\x20\x32\x2e\x35\x2e\x34\xff\x90\
      \x00\x0a\x00\x00\x00\x00\x00\x20\x00\x01\xff\x93\xdf\x80\x20\x0b\
      \xb2\x8a\x7f\xdf\x80\x10\x07\x9f\xdf\x80\x18\x05\xa2\xdd\xff\xd9";

    #[test]
    fn decodes_jpeg2000_and_refuses_every_truncation() {
        let rgb = image_decoder(PixelFormat::Rgb, &bytes(J2K)).unwrap();
        assert_eq!(rgb.shape(), &[1, 2, 3]);
        assert_eq!(rgb.as_u8().unwrap(), &[255, 0, 0, 0, 128, 255]);
        for n in 0..J2K.len() {
            assert!(
                image_decoder(PixelFormat::Rgb, &bytes(&J2K[..n])).is_err(),
                "{n} bytes"
            );
        }
    }

    #[test]
    fn corrupt_truncated_and_unknown_bytes_are_errors() {
        for b in [
            &PPM[..PPM.len() - 1],
            b"\x89PNG\r\n\x1a\n\x00\x00",
            b"\xff\xd8\xff\xe0\x00\x10JFIF",
            b"BM\x00\x00",
            b"II*\x00\x08\x00\x00\x00",
            b"RIFF\x00\x00\x00\x00WEBPVP8 ",
            b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00",
            b"\xff\x4f\xff\x51\x00",
            // A header claiming 10^10 pixels.
            b"P6\n100000 100000\n255\n\x00",
            b"not an image",
            b"",
        ] {
            let e = image_decoder(PixelFormat::Rgb, &bytes(b)).unwrap_err();
            assert!(e.to_string().contains("ImageDecoder"), "{e}");
        }
    }

    #[test]
    fn a_corrupt_image_in_a_graph_is_an_error_naming_the_node() {
        let g = lpc_ir::text::parse(
            "graph @g(%bytes: u8[n]) -> (%img) {
  %img = image_decoder(%bytes) {pixel_format=bgr}
  return %img
}",
        )
        .unwrap();
        let ok = crate::run(&g, &[bytes(PPM)]).unwrap();
        assert_eq!(ok[0].as_u8().unwrap(), &[0, 0, 255, 255, 128, 0]);
        let e = crate::run(&g, &[bytes(&PPM[..12])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'img'") && e.contains("PNM"), "{e}");
    }

    #[test]
    fn wrong_dtype_or_rank_is_an_error() {
        let f = Tensor::from_f32(&[2], vec![0.0; 2]).unwrap();
        assert!(matches!(
            image_decoder(PixelFormat::Rgb, &f),
            Err(EvalError::DType { .. })
        ));
        let m = Tensor::from_u8(&[1, 2], vec![0; 2]).unwrap();
        assert!(image_decoder(PixelFormat::Rgb, &m).is_err());
    }
}
