//! Turning an image file or raw RGB8 pixels into the tensor an image model reads.
//!
//! Files are decoded with the `image` crate, which this build compiles with PNG and JPEG only.
//! The format is detected from the content, not the extension, and a JPEG's EXIF orientation is
//! applied so a phone photo is embedded the right way up.
//!
//! The resize rule: cut the centred square whose side is the image's shorter side, then resize
//! it to `input_size` a side with a Catmull-Rom (bicubic) filter, as TensorFlow's EfficientNet
//! evaluation resizes bicubically. Cutting a square keeps the aspect ratio, as that evaluation
//! does. It also crops to the central 87.5%; this rule keeps the whole square, because an
//! embedding for search should see the whole subject. In a numpy check both rules gave the cat
//! photo the cat classes 281, 282 and 285 as its top 3 and the coffee photo espresso (967) and
//! cup (968) as its top 2. An image whose shorter side is already `input_size` is only cut, not
//! resampled, so a 224x224 input reaches the network exactly as given.
//!
//! Values are normalised as `(v - 127) / 128` per channel (see [`ImageSettings`]), the
//! preprocessing of TensorFlow's EfficientNet-Lite models, which these weights were converted
//! from. In the same check the ImageNet mean and deviation also gave the right classes, but
//! with lower confidence on the coffee photo (0.82 against 0.94).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::{Device, Tensor};
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, RgbImage};

use crate::config::ImageSettings;
use crate::error::ImageInputError;

/// Decodes the image file at `path` into RGB8 pixels, upright by its EXIF orientation.
pub(crate) fn decode_file(path: &Path) -> Result<RgbImage, ImageInputError> {
    let read_error = |source| ImageInputError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(read_error)?;
    if reader.format().is_none() {
        return Err(ImageInputError::UnknownFormat {
            path: path.to_path_buf(),
        });
    }

    // An IO error while decoding is almost always the end of a truncated file, so it is
    // reported as a decode failure.
    let decode_error = |source: ImageError| match source {
        ImageError::Unsupported(unsupported) => ImageInputError::UnsupportedFormat {
            path: path.to_path_buf(),
            format: format!("{:?}", unsupported.format_hint()),
        },
        source => ImageInputError::Decode {
            path: path.to_path_buf(),
            source,
        },
    };
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);

    let image = image.into_rgb8();
    check_not_empty(&path.display().to_string(), image.width(), image.height())?;
    Ok(image)
}

/// Wraps raw RGB8 pixels, row by row from the top left, as an image.
pub(crate) fn rgb8_image(
    width: u32,
    height: u32,
    pixels: &[u8],
) -> Result<RgbImage, ImageInputError> {
    check_not_empty("RGB8 pixels", width, height)?;
    let expected = width as usize * height as usize * 3;
    if pixels.len() != expected {
        return Err(ImageInputError::PixelCount {
            width,
            height,
            expected,
            actual: pixels.len(),
        });
    }
    let image = RgbImage::from_raw(width, height, pixels.to_vec());
    Ok(image.expect("the buffer length was checked"))
}

fn check_not_empty(input: &str, width: u32, height: u32) -> Result<(), ImageInputError> {
    if width == 0 || height == 0 {
        return Err(ImageInputError::Empty {
            input: input.to_string(),
            width,
            height,
        });
    }
    Ok(())
}

/// Cuts the centred square of `image` and resizes it to `input_size` a side.
pub(crate) fn square(image: &RgbImage, input_size: u32) -> RgbImage {
    let (width, height) = image.dimensions();
    let side = width.min(height);
    let left = (width - side) / 2;
    let top = (height - side) / 2;
    let cut = imageops::crop_imm(image, left, top, side, side).to_image();
    if side == input_size {
        return cut;
    }
    imageops::resize(&cut, input_size, input_size, FilterType::CatmullRom)
}

/// Normalises a square image into a tensor of shape (1, 3, side, side): channel-major, each
/// value `(v - pixel_mean) / pixel_std`.
pub(crate) fn to_tensor(image: &RgbImage, settings: &ImageSettings) -> candle_core::Result<Tensor> {
    let (width, height) = image.dimensions();
    let plane = width as usize * height as usize;
    let mut values = vec![0f32; 3 * plane];
    for (index, pixel) in image.pixels().enumerate() {
        for channel in 0..3 {
            let value = f32::from(pixel.0[channel]);
            values[channel * plane + index] =
                (value - settings.pixel_mean[channel]) / settings.pixel_std[channel];
        }
    }
    let shape = (1, 3, height as usize, width as usize);
    Tensor::from_vec(values, shape, &Device::Cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ImageSettings {
        ImageSettings {
            input_size: 4,
            pixel_mean: [127.0, 127.0, 127.0],
            pixel_std: [128.0, 128.0, 128.0],
            batch_norm_eps: 1e-3,
            normalize: true,
        }
    }

    /// Writes a 16x8 PNG with a horizontal red ramp into `dir` and returns its path.
    fn write_png(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("ramp.png");
        let image = RgbImage::from_fn(16, 8, |x, _| image::Rgb([x as u8 * 16, 0, 0]));
        image.save(&path).unwrap();
        path
    }

    #[test]
    fn png_is_decoded_whatever_its_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ramp.data");
        std::fs::rename(write_png(dir.path()), &path).unwrap();

        let image = decode_file(&path).unwrap();

        assert_eq!(image.dimensions(), (16, 8));
        assert_eq!(image.get_pixel(3, 5).0, [48, 0, 0]);
    }

    #[test]
    fn truncated_png_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_png(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

        let error = decode_file(&path).unwrap_err();

        assert!(matches!(error, ImageInputError::Decode { .. }), "{error:?}");
        assert!(error.to_string().contains("ramp.png"), "{error}");
    }

    #[test]
    fn text_file_is_not_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.png");
        std::fs::write(&path, "not an image at all\n").unwrap();

        let error = decode_file(&path).unwrap_err();

        assert!(
            matches!(error, ImageInputError::UnknownFormat { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("notes.png"), "{error}");
    }

    #[test]
    fn gif_is_an_unsupported_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("anim.gif");
        std::fs::write(&path, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();

        let error = decode_file(&path).unwrap_err();

        assert!(
            matches!(error, ImageInputError::UnsupportedFormat { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("anim.gif"), "{error}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.jpg");

        let error = decode_file(&path).unwrap_err();

        assert!(matches!(error, ImageInputError::Read { .. }), "{error:?}");
        assert!(error.to_string().contains("absent.jpg"), "{error}");
    }

    #[test]
    fn wrong_pixel_count_is_rejected() {
        let error = rgb8_image(2, 2, &[0; 11]).unwrap_err();

        assert_eq!(
            error.to_string(),
            "RGB8 pixels of 2x2 need 12 bytes, got 11"
        );
    }

    #[test]
    fn empty_pixels_are_rejected() {
        let error = rgb8_image(0, 5, &[]).unwrap_err();

        assert!(matches!(error, ImageInputError::Empty { .. }), "{error:?}");
    }

    #[test]
    fn square_cuts_the_centre_of_a_wide_image() {
        // 6x4: columns 1 to 4 are the centre square; mark them by their red value.
        let pixels: Vec<u8> = (0..4)
            .flat_map(|_| (0..6u8).flat_map(|x| [x * 10, 0, 0]))
            .collect();
        let image = rgb8_image(6, 4, &pixels).unwrap();

        let cut = square(&image, 4);

        assert_eq!(cut.dimensions(), (4, 4));
        let reds: Vec<u8> = (0..4).map(|x| cut.get_pixel(x, 0).0[0]).collect();
        assert_eq!(reds, [10, 20, 30, 40]);
    }

    #[test]
    fn square_resizes_to_input_size() {
        let image = rgb8_image(10, 30, &[200; 10 * 30 * 3]).unwrap();

        let cut = square(&image, 4);

        assert_eq!(cut.dimensions(), (4, 4));
        assert!(cut.pixels().all(|pixel| pixel.0 == [200, 200, 200]));
    }

    #[test]
    fn tensor_is_channel_major_and_normalised() {
        let mut pixels = vec![127; 4 * 4 * 3];
        pixels[0] = 255;
        pixels[4 * 4 * 3 - 1] = 0;
        let image = rgb8_image(4, 4, &pixels).unwrap();

        let tensor = to_tensor(&image, &settings()).unwrap();

        assert_eq!(tensor.dims(), [1, 3, 4, 4]);
        let values = tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values[0], 1.0, "red of the first pixel");
        assert_eq!(values[16], 0.0, "green of the first pixel");
        assert_eq!(values[47], -127.0 / 128.0, "blue of the last pixel");
    }
}
