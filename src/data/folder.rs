//! Image folders in the layout of torchvision's `ImageFolder`: `root/<class>/<image>.png`.

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Pixel};
use rayon::prelude::*;

use super::Dataset;
use crate::error::{Error, Result};

/// Loads `root/<class>/<file>` images into a [`Dataset`] of `channels` x `size[0]` x `size[1]`.
///
/// As torchvision's `ImageFolder`: each sub-directory of `root` is a class, classes are numbered
/// in sorted name order, and files are taken in sorted order. Files ending in `.png`, `.jpg` or
/// `.jpeg` (any case) are decoded (in parallel); other files are skipped, and so are hidden
/// entries (a leading `.`, such as `.ipynb_checkpoints`). Each image is converted to
/// `channels` (1: luma, with Rec. 709 weights as the `image` crate computes it; 3: RGB, alpha
/// dropped) and resized to `size = [height, width]` with a bilinear filter when its size differs.
///
/// A file that does not decode is an [`Error::Format`] naming it; so is a root without class
/// directories or a class directory without images.
///
/// ```no_run
/// let data = convgrad::data::load_image_folder("photos/train", 3, [64, 64])?;
/// println!("{} images of {} classes: {:?}", data.len(), data.num_classes(), data.class_names());
/// # Ok::<(), convgrad::Error>(())
/// ```
pub fn load_image_folder(
    root: impl AsRef<Path>,
    channels: usize,
    size: [usize; 2],
) -> Result<Dataset> {
    let root = root.as_ref();
    const OP: &str = "load_image_folder";
    if channels != 1 && channels != 3 {
        return Err(Error::invalid(
            OP,
            format!("channels must be 1 (luma) or 3 (RGB), not {channels}"),
        ));
    }
    let [height, width] = size;
    let in_range = |d: usize| d > 0 && u32::try_from(d).is_ok();
    if !in_range(height) || !in_range(width) {
        return Err(Error::invalid(
            OP,
            format!("image size {size:?} is not valid"),
        ));
    }
    let format_error = |path: &Path, message: &str| Error::Format {
        path: path.to_path_buf(),
        message: message.to_string(),
    };

    let class_dirs: Vec<PathBuf> = sorted_entries(root)?
        .into_iter()
        .filter(|path| path.is_dir())
        .collect();
    if class_dirs.is_empty() {
        return Err(format_error(
            root,
            "no class sub-directories (expected root/<class>/<image>.png)",
        ));
    }
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    let mut class_names = Vec::new();
    for (label, class_dir) in class_dirs.iter().enumerate() {
        let before = files.len();
        for path in sorted_entries(class_dir)? {
            if path.is_file() && has_image_extension(&path) {
                files.push((path, label));
            }
        }
        if files.len() == before {
            return Err(format_error(
                class_dir,
                "class directory holds no PNG or JPEG files",
            ));
        }
        let name = class_dir.file_name().unwrap_or_default();
        class_names.push(name.to_string_lossy().into_owned());
    }

    let sample_len = channels * height * width;
    let mut pixels = vec![0u8; files.len() * sample_len];
    // The first failing file in sorted order is reported, whichever thread met it first.
    let failure = pixels
        .par_chunks_mut(sample_len)
        .zip(files.par_iter())
        .find_map_first(|(out, (path, _))| decode_into(path, channels, size, out).err());
    if let Some(error) = failure {
        return Err(error);
    }
    let labels = files.iter().map(|&(_, label)| label).collect();
    Dataset::new(pixels, labels, [channels, height, width], class_names)
}

/// The non-hidden entries of `dir`, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io_error = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ["png", "jpg", "jpeg"].contains(&ext.to_ascii_lowercase().as_str()))
}

/// Decodes one file into `out` as `[channels, height, width]` bytes.
fn decode_into(path: &Path, channels: usize, size: [usize; 2], out: &mut [u8]) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let image = image::ImageReader::open(path)
        .map_err(io_error)?
        // The contents decide the format, so a JPEG saved as `.png` still loads.
        .with_guessed_format()
        .map_err(io_error)?
        .decode()
        .map_err(|error| Error::Format {
            path: path.to_path_buf(),
            message: format!("cannot decode the image: {error}"),
        })?;
    let interleaved = if channels == 1 {
        resized(image.to_luma8(), size).into_raw()
    } else {
        resized(image.to_rgb8(), size).into_raw()
    };
    // HWC (interleaved) to CHW (planes).
    let plane = size[0] * size[1];
    for (pixel, values) in interleaved.chunks_exact(channels).enumerate() {
        for (channel, &value) in values.iter().enumerate() {
            out[channel * plane + pixel] = value;
        }
    }
    Ok(())
}

fn resized<P>(
    image: ImageBuffer<P, Vec<u8>>,
    [height, width]: [usize; 2],
) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (width, height) = (width as u32, height as u32);
    if image.dimensions() == (width, height) {
        image
    } else {
        imageops::resize(&image, width, height, FilterType::Triangle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    /// A 4x2 (width x height) RGB image whose pixel (x, y) is (10x + y, 100, 200 + label).
    fn rgb_fixture(label: u8) -> RgbImage {
        RgbImage::from_fn(4, 2, |x, y| Rgb([10 * x as u8 + y as u8, 100, 200 + label]))
    }

    fn make_folder(dir: &TempDir) {
        for (label, class) in ["cat", "dog"].iter().enumerate() {
            let class_dir = dir.path().join(class);
            std::fs::create_dir_all(&class_dir).unwrap();
            rgb_fixture(label as u8)
                .save(class_dir.join("b.png"))
                .unwrap();
            rgb_fixture(label as u8)
                .save(class_dir.join("a.PNG"))
                .unwrap();
        }
        // Not images by extension, or hidden: skipped.
        dir.write("cat/notes.txt", b"not an image");
        dir.write(".hidden/x.png", b"garbage");
    }

    #[test]
    fn rgb_round_trip_is_chw_with_sorted_classes() {
        let dir = TempDir::new("folder-rgb");
        make_folder(&dir);
        let data = load_image_folder(dir.path(), 3, [2, 4]).unwrap();
        assert_eq!(data.class_names(), &["cat".to_string(), "dog".to_string()]);
        assert_eq!(data.labels(), &[0, 0, 1, 1]);
        assert_eq!(data.sample_shape(), [3, 2, 4]);
        let image = data.image(2);
        // Red plane: row 0 then row 1; green and blue planes constant.
        assert_eq!(&image[..8], &[0, 10, 20, 30, 1, 11, 21, 31]);
        assert!(image[8..16].iter().all(|&v| v == 100));
        assert!(image[16..].iter().all(|&v| v == 201));
    }

    #[test]
    fn converts_to_luma_and_resizes() {
        let dir = TempDir::new("folder-luma");
        let class_dir = dir.path().join("only");
        std::fs::create_dir_all(&class_dir).unwrap();
        GrayImage::from_pixel(8, 6, Luma([77]))
            .save(class_dir.join("grey.png"))
            .unwrap();
        RgbImage::from_pixel(3, 3, Rgb([50, 50, 50]))
            .save(class_dir.join("rgb.jpg"))
            .unwrap();
        let data = load_image_folder(dir.path(), 1, [4, 5]).unwrap();
        assert_eq!((data.len(), data.sample_shape()), (2, [1, 4, 5]));
        // A constant image stays constant through bilinear resizing (up to JPEG's rounding).
        assert!(
            data.image(0).iter().all(|&v| v == 77),
            "{:?}",
            data.image(0)
        );
        assert!(
            data.image(1).iter().all(|&v| v.abs_diff(50) <= 2),
            "{:?}",
            data.image(1)
        );
        let rgb = load_image_folder(dir.path(), 3, [4, 5]).unwrap();
        assert!(rgb.image(0).iter().all(|&v| v == 77));
    }

    #[test]
    fn undecodable_file_is_named() {
        let dir = TempDir::new("folder-corrupt");
        make_folder(&dir);
        let bad = dir.write("dog/c.jpeg", b"this is not a jpeg");
        let err = load_image_folder(dir.path(), 3, [2, 4]).unwrap_err();
        assert!(
            matches!(err, Error::Format { ref path, .. } if *path == bad),
            "{err}"
        );
    }

    #[test]
    fn empty_folders_and_bad_arguments_are_errors() {
        let dir = TempDir::new("folder-empty");
        let text = load_image_folder(dir.path(), 3, [2, 2])
            .unwrap_err()
            .to_string();
        assert!(text.contains("no class sub-directories"), "{text}");
        make_folder(&dir);
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        dir.write("empty/readme.md", b"# nothing");
        let text = load_image_folder(dir.path(), 3, [2, 2])
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("empty") && text.contains("no PNG or JPEG"),
            "{text}"
        );
        assert!(load_image_folder(dir.path(), 2, [2, 2]).is_err());
        assert!(load_image_folder(dir.path(), 3, [0, 2]).is_err());
        let missing = load_image_folder(dir.path().join("absent"), 3, [2, 2]).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }));
    }
}
