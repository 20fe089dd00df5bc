//! `convgrad predict`: classify PNG and JPEG images with an ImageNet model, top-5 with names.
//!
//! Preprocessing is what each model's weights were trained with: the image is resized so its
//! shorter side is `resize` (bilinear, antialiased when shrinking, as torchvision's `Resize` on
//! a PIL image), centre-cropped to `crop` x `crop`, scaled to [0, 1] and normalised per channel.
//! torchvision's models use ImageNet's mean and standard deviation; GoogLeNet and Inception-v3
//! were ported from TensorFlow and their pretrained builders set `transform_input`, which maps
//! ImageNet-normalised input to `(x - 0.5) / 0.5`, so that is what they get here; timm's
//! Xception and MobileNet v1 use 0.5 / 0.5 as well.

use std::path::{Path, PathBuf};

use clap::Args;
use convgrad::models::weights::{load_model, Weights};
use convgrad::{Error, Tensor};
use image::imageops::{self, FilterType};
use image::ImageReader;

#[derive(Args)]
pub struct PredictArgs {
    /// Architecture name (see `convgrad models`).
    pub model: String,
    /// ImageNet weights: a torchvision/timm state_dict as safetensors
    /// (`python scripts/export_weights.py MODEL --pretrained OUT`).
    #[arg(long)]
    pub weights: PathBuf,
    /// PNG or JPEG images.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

/// The ImageNet class names, in class-index order (scripts/imagenet_classes.py).
const IMAGENET_CLASSES: &str = include_str!("imagenet_classes.txt");

/// How a model's pretrained weights expect their input.
struct Preprocess {
    resize: u32,
    crop: u32,
    mean: [f32; 3],
    std: [f32; 3],
}

fn preprocess_for(model: &str) -> Preprocess {
    const IMAGENET: ([f32; 3], [f32; 3]) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    const HALF: ([f32; 3], [f32; 3]) = ([0.5; 3], [0.5; 3]);
    let (resize, crop, (mean, std)) = match model {
        "inception_v3" => (342, 299, HALF),
        "xception" => (333, 299, HALF), // timm: crop_pct 0.8975
        "googlenet" | "mobilenet_v1" => (256, 224, HALF),
        _ => (256, 224, IMAGENET),
    };
    Preprocess {
        resize,
        crop,
        mean,
        std,
    }
}

/// Decodes, resizes, crops and normalises one image to `[3, crop, crop]` values.
fn load_image(path: &Path, pre: &Preprocess) -> convgrad::Result<Vec<f32>> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let reader = ImageReader::open(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let image = reader
        .decode()
        .map_err(|e| bad(format!("cannot decode the image: {e}")))?
        .to_rgb8();
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Err(bad("the image is empty".into()));
    }
    // Shorter side to `resize`, the other in proportion (rounded down, as torchvision).
    let (new_width, new_height) = if width <= height {
        let h = (pre.resize as u64 * height as u64 / width as u64) as u32;
        (pre.resize, h.max(pre.resize))
    } else {
        let w = (pre.resize as u64 * width as u64 / height as u64) as u32;
        (w.max(pre.resize), pre.resize)
    };
    let resized = imageops::resize(&image, new_width, new_height, FilterType::Triangle);
    let left = ((new_width - pre.crop) as f64 / 2.0).round() as u32;
    let top = ((new_height - pre.crop) as f64 / 2.0).round() as u32;
    let crop = pre.crop as usize;
    let mut out = vec![0f32; 3 * crop * crop];
    for y in 0..crop {
        for x in 0..crop {
            let pixel = resized.get_pixel(left + x as u32, top + y as u32);
            for c in 0..3 {
                let value = pixel[c] as f32 / 255.0;
                out[(c * crop + y) * crop + x] = (value - pre.mean[c]) / pre.std[c];
            }
        }
    }
    Ok(out)
}

pub fn run(args: &PredictArgs) -> convgrad::Result<()> {
    let pre = preprocess_for(&args.model);
    let weights = Weights::read(&args.weights)?;
    let crop = pre.crop as usize;
    let model = load_model(&args.model, &weights, Some([3, crop, crop]))?;
    let classes = model.config.num_classes;
    let names: Vec<&str> = IMAGENET_CLASSES.lines().collect();
    if classes != names.len() {
        eprintln!(
            "note: the weights have {classes} classes, not ImageNet's {}: printing class indices",
            names.len()
        );
    }
    let mut batch = Vec::with_capacity(args.images.len() * 3 * crop * crop);
    for path in &args.images {
        batch.extend(load_image(path, &pre)?);
    }
    let input = Tensor::from_vec(batch, &[args.images.len(), 3, crop, crop])?;
    let logits = model.graph.inference(&model.store)?.forward(&input)?;
    let probabilities = convgrad::functional::softmax(&logits, 1)?;
    for (i, path) in args.images.iter().enumerate() {
        let row = &probabilities.data()[i * classes..(i + 1) * classes];
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        println!("{}:", path.display());
        for (rank, &class) in order.iter().take(args.top).enumerate() {
            let name = if classes == names.len() {
                names[class]
            } else {
                ""
            };
            println!(
                "  {}. {:>6.2}%  {name} ({class})",
                rank + 1,
                100.0 * row[class]
            );
        }
    }
    Ok(())
}
